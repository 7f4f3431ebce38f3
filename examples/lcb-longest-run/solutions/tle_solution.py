class Solution:
    def longestRun(self, s: str) -> int:
        best = 1
        i = 0
        while True:
            # Bug: i is never advanced, so this spins forever (busy loop).
            if i + 1 < len(s) and s[i] == s[i + 1]:
                best += 1
            else:
                pass
