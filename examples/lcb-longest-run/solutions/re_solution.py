class Solution:
    def longestRun(self, s: str) -> int:
        best = 0
        i = 0
        while i < len(s):
            j = i
            # Bug: no bounds check, so scanning the final block of the
            # string walks past the end and raises IndexError.
            while s[j] == s[i]:
                j += 1
            best = max(best, j - i)
            i = j
        return best
