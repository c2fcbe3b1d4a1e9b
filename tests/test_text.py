from itemtower.features import PreTokenizer, TextTokenizer
from itemtower.features.tokenizer import UNK_ID


def test_pretokenizer_keeps_fashion_words_and_sizes_whole():
    """Korean fashion terms, brand codes and sizes survive pre-tokenization as single tokens."""
    toks = PreTokenizer()("XP214 리버스 와이드 쿨링 린넨 팬츠 (LIGHT BLUE) 55/66 FREE")
    for t in ("xp214", "와이드", "쿨링", "린넨", "팬츠", "light", "blue", "55/66", "free"):
        assert t in toks, (t, toks)
    assert "(" not in toks


def test_pretokenizer_drops_korean_particles():
    """Particles such as 를 are dropped so 팬츠를 and 팬츠 share a token."""
    assert PreTokenizer()("팬츠를") == ["팬츠"]


def test_english_only_text_does_not_need_kiwi():
    """Latin-only text is split by regex, lower-cased, without loading kiwi."""
    pre = PreTokenizer()
    assert pre("Puma Men's T-Shirt 100% Cotton") == ["puma", "men", "s", "t-shirt", "100%", "cotton"]
    assert pre._kiwi is None


def test_tokenizer_round_trip_and_unknowns(tmp_path):
    """A fitted tokenizer saves and loads to the same ids; unseen words map to [UNK] instead of raising."""
    texts = ["와이드 데님 팬츠 블랙", "slim wool coat black", "와이드 슬랙스 wool"] * 5
    tok = TextTokenizer.fit(texts, vocab_size=200, min_frequency=1)
    tok.save(tmp_path / "t.json")
    tok2 = TextTokenizer.load(tmp_path / "t.json")
    assert tok.encode_batch(texts[:3]) == tok2.encode_batch(texts[:3])
    ids = tok2.encode_batch(["와이드 데님 zzzqqq"])[0]
    assert UNK_ID in ids and len(ids) >= 3


def test_tokenizer_load_broken_file(tmp_path):
    """A broken tokenizer file raises a ValueError naming the file."""
    p = tmp_path / "tok.json"
    p.write_text("{not json")
    try:
        TextTokenizer.load(p)
    except ValueError as e:
        assert "tok.json" in str(e)
    else:
        raise AssertionError("no error")
