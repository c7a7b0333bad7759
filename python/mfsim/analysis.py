"""mfsim.analysis: the analysis package (mfsim_analysis) under the mfsim name: the same module.

    from mfsim.analysis import open_run, fit_power_law
"""

import sys

import mfsim_analysis

sys.modules[__name__] = mfsim_analysis
