"""The language-modeling task (next-token prediction over long text streams); modules split
by concern.

Import the module you need (`corpus`, `vocab`, `batching`, `stateful`, `metrics`, `ngram`)
directly: this package imports none of them, so a stage's import closure holds only what it
runs, and only `stateful` imports torch.
"""
