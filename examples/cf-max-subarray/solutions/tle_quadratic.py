import sys


def main():
    data = sys.stdin.buffer.read().split()
    pos = 0
    t = int(data[pos]); pos += 1
    out = []
    for _ in range(t):
        n = int(data[pos]); pos += 1
        a = [int(x) for x in data[pos:pos + n]]
        pos += n
        # Correct but O(n^2): tries every start index.
        best = a[0]
        for i in range(n):
            s = 0
            for j in range(i, n):
                s += a[j]
                if s > best:
                    best = s
        out.append(str(best))
    print("\n".join(out))


main()
