# Bug: the inner loop stops one element early, so pairs that
# involve the last element are never counted.
n = int(input())
a = list(map(int, input().split()))
count = 0
for i in range(n):
    for j in range(i + 1, n - 1):
        if (a[i] + a[j]) % 2 == 0:
            count += 1
print(count)
