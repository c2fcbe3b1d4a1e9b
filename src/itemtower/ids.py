"""Reserved ids: the contract between the featurizer (which writes them) and the tower (which reads them). No
imports: the features, the model and evaluation all name these instead of comparing with 0, 1 and 2."""

VALUE_PAD, VALUE_MASK, VALUE_UNK = 0, 1, 2  # STD value ids: a missing field is all-PAD; ids above are values
TOKEN_PAD, TOKEN_UNK, TOKEN_MASK = 0, 1, 2  # text token ids ([PAD], [UNK], [MASK] lead the tokenizer's vocabulary)
TYPE_PAD, TYPE_TITLE = 0, 1  # text segment types; RE field i is 2 + i
FIRST_VALUE = VALUE_UNK + 1  # ids below are PAD/MASK/UNK, never a catalog value

__all__ = ["VALUE_PAD", "VALUE_MASK", "VALUE_UNK", "TOKEN_PAD", "TOKEN_UNK", "TOKEN_MASK", "TYPE_PAD", "TYPE_TITLE",
           "FIRST_VALUE"]
