"""mfsim_analysis: read mfsim's H5MD output files and draw them.

    from mfsim_analysis import open_run
    run = open_run("runs/quickstart.h5")
    run.config["model"]["width"], run.get("model.beta")
    loss = run.observables["loss"]              # .step, .time, .value arrays
    g = run.particles["two_layer"]              # frames read one at a time
    last = g.frame(-1); last["a"], last.block("w"), last["|w|"]

    c = curves(["runs/m64_s1.h5", "runs/m64_s2.h5"], ["loss"], "model.width", band="ci95")
    c.plot("loss_by_width.png")                 # mean over seeds with a band, one colour per width

Command line: python3 -m mfsim_analysis {plot,summary,sweep,curves,launch} --help
"""

from .curves import Curves, curves
from .fit import PowerLawFit, fit_power_law
from .network import activation, predict, resnet_predict, two_layer_predict
from .run import Data, Frame, NotAnMfsimFile, Observable, ParticleGroup, Run, open_run

__all__ = [
    "open_run", "curves", "Curves", "Run", "Observable", "ParticleGroup", "Frame", "Data", "NotAnMfsimFile",
    "fit_power_law", "PowerLawFit", "predict", "two_layer_predict", "resnet_predict", "activation",
]
