"""Package data of sdfl (installed as ``sdfl_assets``): shipped models, detector models, demo portrait."""
