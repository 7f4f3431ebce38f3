from typing import List


class Solution:
    def countPairs(self, nums: List[int], target: int) -> int:
        nums = sorted(nums)
        lo, hi = 0, len(nums) - 1
        count = 0
        while lo < hi:
            if nums[lo] + nums[hi] < target:
                # every index in (lo, hi] pairs with lo
                count += hi - lo
                lo += 1
            else:
                hi -= 1
        return count
