import sys


def main():
    data = sys.stdin.read().split()
    n = int(data[0])
    a = list(map(int, data[1:1 + n]))
    even = sum(1 for x in a if x % 2 == 0)
    odd = n - even
    # even + even and odd + odd are the only even sums
    print(even * (even - 1) // 2 + odd * (odd - 1) // 2)


main()
