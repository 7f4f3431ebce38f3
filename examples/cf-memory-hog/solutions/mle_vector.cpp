#include <bits/stdc++.h>
using namespace std;

int main() {
    long long n;
    cin >> n;
    // Way over the 64 MB limit: 64M long longs = 512 MB, every page written.
    const size_t SZ = size_t(64) << 20;
    vector<long long> v(SZ);
    for (size_t i = 0; i < SZ; i++) v[i] = (long long)i;
    long long s = 0;
    for (long long i = 1; i <= n; i++) s += v[i];
    // v[i] == i, so s is the correct answer; only memory is the problem.
    cout << s << "\n";
    return 0;
}
