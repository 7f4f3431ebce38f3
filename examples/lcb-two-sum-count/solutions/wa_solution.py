from typing import List


class Solution:
    def countPairs(self, nums: List[int], target: int) -> int:
        # Bug: uses <= instead of <, so pairs summing exactly to target count.
        n = len(nums)
        return sum(
            1
            for i in range(n)
            for j in range(i + 1, n)
            if nums[i] + nums[j] <= target
        )
