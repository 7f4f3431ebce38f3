#include <bits/stdc++.h>
using namespace std;

int main() {
    ios::sync_with_stdio(false);
    cin.tie(nullptr);
    int t;
    cin >> t;
    while (t--) {
        int n;
        cin >> n;
        // Bug: 32-bit accumulators overflow once a subarray sum exceeds ~2.1e9.
        int best = INT_MIN, cur = 0;
        for (int i = 0; i < n; i++) {
            int x;
            cin >> x;
            cur = max(x, cur + x);
            best = max(best, cur);
        }
        cout << best << "\n";
    }
    return 0;
}
