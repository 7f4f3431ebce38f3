class Solution:
    def longestRun(self, s: str) -> int:
        best = 0
        cur = 0
        prev = None
        for ch in s:
            if ch == prev:
                cur += 1
            else:
                cur = 1
                prev = ch
            best = max(best, cur)
        return best
