#include <bits/stdc++.h>
using namespace std;

int main() {
    int t;
    cin >> t
    while (t--) {
        int n;
        cin >> n;
        long long best = LLONG_MIN, cur = 0;
        for (int i = 0; i < n; i++) {
            long long x;
            cin >> x;
            cur = max(x, cur + x);
            best = max(best, cur);
        }
        cout << best << "\n";
    }
    return 0;
}
