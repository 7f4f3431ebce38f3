#include <bits/stdc++.h>
using namespace std;

int main() {
    long long n;
    cin >> n;
    // The volatile pointer stops the optimiser from reasoning about it,
    // so this is a real store through address 0 (SIGSEGV).
    long long *volatile p = nullptr;
    *p = n * (n + 1) / 2;
    cout << *p << "\n";
    return 0;
}
