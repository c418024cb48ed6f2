"""Helpers of the analysis and export tools (tools/analysis_tools, tools/deployment): building a
config's model outside a Runner, effective receptive fields, SS2D's implicit attention, mmengine
json logs, the model-index metafiles, and figures."""
