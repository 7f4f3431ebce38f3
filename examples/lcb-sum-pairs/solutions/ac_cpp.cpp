#include <bits/stdc++.h>
using namespace std;

int main() {
    ios::sync_with_stdio(false);
    cin.tie(nullptr);
    long long n;
    cin >> n;
    long long even = 0, odd = 0;
    for (long long i = 0; i < n; i++) {
        long long x;
        cin >> x;
        if (x % 2 == 0) even++; else odd++;
    }
    cout << even * (even - 1) / 2 + odd * (odd - 1) / 2 << "\n";
    return 0;
}
