"""The sequence-labeling task (one tag per token or step); modules split by stage.

Import the module a stage needs (`conll`, `scoring`, `crf_baseline`, ...) directly: this
package imports none of them, so a stage's import closure holds only what it runs.
"""
