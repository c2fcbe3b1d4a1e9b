"""A synthetic K-Fashion catalog: the embedded default that makes training run on a fresh machine.

The point is realistic *structure*, not realistic products: the category decides which fields exist (tops, outers
and one-pieces have `top.*` fields, pants a silhouette, skirts a design); the season drives fibre and fleece
(winter -> wool and fleece); titles mix an invented brand, Korean and English adjectives and attribute words, in
roughly 60% Korean / 25% mixed / 15% English; `re` phrases are derived from the attributes (and are sometimes
missing); products come in colour-variant groups of 1-4 that share a `group` id, brand and base title.
Quality is judged on real catalogs; this only has to exercise every code path with plausible signal.

Everything is drawn from one `random.Random(seed)`, so a seed always gives the same catalog.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

__all__ = ["generate"]

# --- categories ------------------------------------------------------------------------------------------------
# category -> (specification, Korean nouns, English nouns, season weights (spring&fall, summer, winter),
#              price range in KRW, gender weights (male, female, both))
_CATEGORIES: dict[str, tuple] = {
    "01outer_01coat": ("outer", ["코트", "롱 코트", "싱글 코트"], ["Coat", "Long Coat", "Single Coat"], (4, 0, 6), (89_000, 389_000), (4, 4, 2)),
    "01outer_02jacket": ("outer", ["자켓", "재킷", "블루종"], ["Jacket", "Jacket", "Blouson"], (7, 1, 2), (59_000, 259_000), (5, 3, 2)),
    "01outer_03jumper": ("outer", ["점퍼", "패딩 점퍼", "후드 집업"], ["Jumper", "Padded Jumper", "Hood Zip-up"], (3, 0, 7), (69_000, 299_000), (4, 3, 3)),
    "01outer_04cardigan": ("outer", ["가디건", "니트 가디건"], ["Cardigan", "Knit Cardigan"], (7, 1, 2), (39_000, 129_000), (3, 5, 2)),
    "02top_01blouse": ("top", ["블라우스", "셔링 블라우스"], ["Blouse", "Shirred Blouse"], (5, 5, 0), (29_000, 99_000), (0, 9, 1)),
    "02top_02t-shirt": ("top", ["티셔츠", "반팔 티셔츠", "긴팔 티셔츠"], ["T-Shirt", "Tee", "Long Sleeve Tee"], (4, 6, 1), (15_000, 59_000), (4, 3, 3)),
    "02top_03sweater": ("top", ["니트", "스웨터", "니트 스웨터"], ["Knit", "Sweater", "Knit Sweater"], (5, 1, 4), (39_000, 159_000), (4, 4, 2)),
    "02top_04shirt": ("top", ["셔츠", "옥스포드 셔츠", "린넨 셔츠"], ["Shirt", "Oxford Shirt", "Linen Shirt"], (6, 4, 1), (29_000, 119_000), (5, 3, 2)),
    "02top_05vest": ("top", ["베스트", "니트 조끼"], ["Vest", "Knit Vest"], (7, 1, 2), (29_000, 99_000), (4, 4, 2)),
    "03-1onepiece(dress)": ("onepiece", ["원피스", "셔츠 원피스", "니트 원피스"], ["Dress", "Shirt Dress", "Knit Dress"], (4, 5, 1), (39_000, 189_000), (0, 1, 0)),
    "03-2onepiece(jumpsuite)": ("onepiece", ["점프수트", "오버롤"], ["Jumpsuit", "Overalls"], (5, 4, 1), (49_000, 159_000), (1, 7, 2)),
    "04bottom_01pants": ("bottom", ["팬츠", "데님 팬츠", "슬랙스", "조거 팬츠"], ["Pants", "Denim Pants", "Slacks", "Jogger Pants"], (5, 4, 2), (29_000, 139_000), (4, 3, 3)),
    "04bottom_02skirt": ("bottom", ["스커트", "롱 스커트", "미니 스커트"], ["Skirt", "Long Skirt", "Mini Skirt"], (5, 4, 1), (29_000, 119_000), (0, 1, 0)),
}
_CATEGORY_WEIGHTS = {  # t-shirts and pants dominate real shops
    "01outer_01coat": 4, "01outer_02jacket": 6, "01outer_03jumper": 5, "01outer_04cardigan": 4, "02top_01blouse": 5,
    "02top_02t-shirt": 14, "02top_03sweater": 8, "02top_04shirt": 8, "02top_05vest": 3, "03-1onepiece(dress)": 7,
    "03-2onepiece(jumpsuite)": 2, "04bottom_01pants": 14, "04bottom_02skirt": 6,
}
_SEASONS = ("spring&fall", "summer", "winter")
_SEASON_KO = {"spring&fall": ["간절기", "데일리"], "summer": ["썸머", "쿨링", "여름"], "winter": ["윈터", "헤비", "겨울"]}
_SEASON_EN = {"spring&fall": ["Daily", "Everyday"], "summer": ["Summer", "Cooling"], "winter": ["Winter", "Heavy"]}
_SEASON_RE = {"spring&fall": ["daily wear"], "summer": ["cooling", "breathable"], "winter": ["warm", "heavyweight"]}

# --- fibres: season -> weights over the schema's fibres; word forms for titles and re -------------------------
_FIBRE_BY_SEASON = {
    "spring&fall": {"Cotton": 8, "Polyester": 5, "Wool": 2, "Nylon": 2, "Viscos rayon": 2, "Hemp": 1, "synthetic fiber Others": 1},
    "summer": {"Cotton": 8, "Hemp": 4, "Polyester": 4, "Viscos rayon": 3, "Silk": 1, "Nylon": 1, "regenerated fiber Others": 1},
    "winter": {"Wool": 8, "Polyester": 5, "Nylon": 4, "Cotton": 2, "synthetic fiber Others": 2, "protein fiber Others": 1},
}
_FIBRE_WORDS = {  # fibre -> (Korean title word, English title word, re phrase)
    "Cotton": ("코튼", "Cotton", "cotton"), "Hemp": ("린넨", "Linen", "linen"), "Silk": ("실크", "Silk", "silk"),
    "Wool": ("울", "Wool", "wool"), "Polyester": ("폴리", "Poly", "polyester"), "Nylon": ("나일론", "Nylon", "nylon"),
    "Viscos rayon": ("레이온", "Rayon", "rayon"), "Polyurethane": ("스판", "Stretch", "spandex"),
    "cellulose fiber Others": ("텐셀", "Tencel", "tencel"), "protein fiber Others": ("캐시미어", "Cashmere", "cashmere"),
    "regenerated fiber Others": ("모달", "Modal", "modal"), "synthetic fiber Others": ("아크릴", "Acrylic", "acrylic"),
}

# --- colours: (English name, Korean name, schema colour) --------------------------------------------------------
_COLOURS: list[tuple[str, str, str]] = [
    ("Black", "블랙", "Black"), ("White", "화이트", "White"), ("Ivory", "아이보리", "White"), ("Gray", "그레이", "Gray"),
    ("Charcoal", "차콜", "Gray"), ("Melange Gray", "멜란지 그레이", "Gray"), ("Navy", "네이비", "Blue"),
    ("Light Blue", "라이트 블루", "Blue"), ("Sky Blue", "스카이 블루", "Blue"), ("Blue", "블루", "Blue"),
    ("Beige", "베이지", "Beige"), ("Cream", "크림", "Beige"), ("Brown", "브라운", "Brown"), ("Camel", "카멜", "Brown"),
    ("Khaki", "카키", "Green"), ("Olive", "올리브", "Green"), ("Mint", "민트", "Green"), ("Red", "레드", "Red"),
    ("Burgundy", "버건디", "Red"), ("Pink", "핑크", "Pink"), ("Orange", "오렌지", "Orange"), ("Yellow", "옐로우", "Yellow"),
    ("Lavender", "라벤더", "Purple"), ("Stripe", "스트라이프", "Mixed"), ("Check", "체크", "Mixed"),
]
_COLOUR_WEIGHTS = [10, 8, 4, 5, 3, 3, 6, 3, 2, 4, 5, 3, 3, 2, 3, 2, 1, 2, 2, 2, 1, 1, 1, 2, 2]

# --- invented brands (no real shop) ------------------------------------------------------------------------------
_BRANDS: list[tuple[str, str]] = [  # (name as shown in titles, name in the `brand` extra)
    ("노멀마인드", "노멀마인드"), ("어반룸", "어반룸"), ("데일리오브", "데일리오브"), ("모노웨이브", "모노웨이브"),
    ("ARCHIVE 21", "ARCHIVE 21"), ("Urban Loom", "Urban Loom"), ("NORTH PIER", "NORTH PIER"), ("Studio Hana", "Studio Hana"),
    ("Blue Harbor", "Blue Harbor"), ("SEOUL FIELD", "SEOUL FIELD"), ("코지랩", "코지랩"), ("라운지웨어", "라운지웨어"),
]
_PREFIXES_KO = ["[무신사]", "[단독]", "[2PACK]", "[시즌오프]", "[1+1]", "[기획]"]

# attribute -> (Korean word, English word, re phrase); used to build titles and re.specification.metadata
_SILHOUETTE_WORDS = {
    "skinny": ("스키니", "Skinny", "skinny fit"), "normal": ("레귤러", "Regular", "regular fit"),
    "wide": ("와이드", "Wide", "wide fit"), "loose": ("루즈핏", "Loose", "loose fit"),
    "bell-bottom": ("부츠컷", "Bootcut", "bootcut"), "Others": ("테이퍼드", "Tapered", "tapered fit"),
}
_LENGTH_WORDS = {
    "crop": ("크롭", "Cropped", "cropped"), "nomal": ("레귤러", "Regular", "regular length"),
    "long": ("롱", "Long", "long length"), "midi": ("미디", "Midi", "midi length"), "short": ("숏", "Short", "short length"),
}
_SLEEVE_WORDS = {
    "sleeveless": ("민소매", "Sleeveless", "sleeveless"), "short sleeves": ("반팔", "Short Sleeve", "short sleeves"),
    "long sleeves": ("긴팔", "Long Sleeve", "long sleeves"),
}
_NECK_WORDS = {
    "round neck": ("라운드넥", "Crew Neck", "round neck"), "V-neck": ("브이넥", "V-Neck", "v-neck"),
    "turtle neck": ("터틀넥", "Turtleneck", "turtle neck"), "hood": ("후드", "Hooded", "hood"),
    "polo collar": ("카라", "Polo", "polo collar"), "shirts collar": ("셔츠 카라", "Collared", "shirt collar"),
    "tailored collar": ("테일러드", "Tailored", "tailored collar"), "band collar": ("차이나카라", "Band Collar", "band collar"),
}
_FIT_KO = ["오버핏", "세미오버핏", "릴렉스드", "베이직", "클래식", "미니멀", "빈티지", "스탠다드"]
_FIT_EN = ["Oversized", "Relaxed", "Basic", "Classic", "Minimal", "Vintage", "Standard", "Essential"]
_FIT_RE = {"오버핏": "oversized fit", "세미오버핏": "semi-oversized fit", "릴렉스드": "relaxed fit", "Oversized": "oversized fit",
           "Relaxed": "relaxed fit"}


def _pick(rng: random.Random, options: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
    return rng.choices(options, weights=weights, k=1)[0] if weights else rng.choice(options)


def _top_fields(rng: random.Random, category: str, season: str) -> dict[str, str]:
    """top.* fields for outers, tops and one-pieces: sleeve length follows the season, neckline the category."""
    if category == "02top_05vest":
        sleeve = "sleeveless"
    elif category.startswith("01outer") or season == "winter":
        sleeve = "long sleeves"
    elif season == "summer":
        sleeve = _pick(rng, ["short sleeves", "sleeveless", "long sleeves"], [7, 2, 1])
    else:
        sleeve = _pick(rng, ["long sleeves", "short sleeves"], [7, 3])

    necks = {
        "01outer_01coat": (["tailored collar", "shawl collar", "no neckline", "hood"], [6, 2, 1, 1]),
        "01outer_02jacket": (["tailored collar", "band collar", "shirts collar", "hood"], [4, 3, 2, 1]),
        "01outer_03jumper": (["hood", "band collar", "turtle neck"], [5, 4, 1]),
        "01outer_04cardigan": (["V-neck", "round neck", "shawl collar"], [6, 3, 1]),
        "02top_01blouse": (["round neck", "bow collar", "square neck", "V-neck", "Peter Pan collar"], [3, 2, 2, 2, 1]),
        "02top_02t-shirt": (["round neck", "V-neck", "polo collar", "U-neck"], [7, 2, 2, 1]),
        "02top_03sweater": (["round neck", "turtle neck", "V-neck", "boat neck"], [5, 3, 2, 1]),
        "02top_04shirt": (["shirts collar", "band collar", "Chinese collar"], [8, 2, 1]),
        "02top_05vest": (["V-neck", "round neck"], [6, 4]),
        "03-1onepiece(dress)": (["round neck", "V-neck", "square neck", "shirts collar", "off shoulder", "halter neck"], [4, 3, 2, 2, 1, 1]),
        "03-2onepiece(jumpsuite)": (["round neck", "V-neck", "shirts collar", "halter neck"], [3, 3, 2, 1]),
    }
    neck_opts, neck_w = necks[category]
    if category == "02top_04shirt":
        sleeve_design = "shirt sleeve"
    elif category in ("02top_03sweater", "01outer_04cardigan", "01outer_03jumper"):
        sleeve_design = _pick(rng, ["ribbed sleeve", "basic sleeve"], [7, 3])
    elif category in ("02top_01blouse", "03-1onepiece(dress)"):
        sleeve_design = _pick(rng, ["basic sleeve", "puff sleeve", "cape sleeve", "petal sleeve"], [5, 3, 1, 1])
    else:
        sleeve_design = _pick(rng, ["basic sleeve", "Others"], [9, 1])
    length = {
        "01outer_01coat": (["long", "midi", "nomal"], [5, 3, 2]),
        "03-1onepiece(dress)": (["midi", "long", "short"], [5, 3, 2]),
        "03-2onepiece(jumpsuite)": (["long", "short"], [7, 3]),
    }.get(category, (["nomal", "crop", "long", "short"], [7, 2, 1, 1]))
    return {
        "top.length_type": _pick(rng, *length),
        "top.sleeve_length_type": sleeve,
        "top.neck_color_design": _pick(rng, neck_opts, neck_w),
        "top.sleeve_design": sleeve_design,
    }


def _product(rng: random.Random) -> dict[str, Any]:
    """The attributes and title parts shared by every variant of one product (everything but the colour)."""
    category = _pick(rng, list(_CATEGORY_WEIGHTS), list(_CATEGORY_WEIGHTS.values()))
    spec, nouns_ko, nouns_en, season_w, (p_lo, p_hi), gender_w = _CATEGORIES[category]
    season = _pick(rng, _SEASONS, season_w)
    noun_i = rng.randrange(len(nouns_ko))
    noun_ko = nouns_ko[noun_i]
    noun_en = nouns_en[noun_i]  # the lists are aligned: the English noun translates the Korean one

    fibres = _fibres(rng, noun_ko, season)
    isfleece, elasticity, transparency = _fabric(rng, category, season, fibres)
    std: dict[str, Any] = {
        "category": category,
        "season": season,
        "fiber_composition": fibres if len(fibres) > 1 else fibres[0],  # multi-valued sometimes, as in real data
        "elasticity": elasticity,
        "transparency": transparency,
        "isfleece": isfleece,
        "gender": _pick(rng, ["male", "female", "both"], gender_w),
        "category_specification": spec,
    }
    fibres = _kind_fields(rng, std, spec, noun_ko, fibres)
    words = _title_words(rng, std, noun_ko, fibres)
    fit_ko, fit_en = rng.choice(_FIT_KO), rng.choice(_FIT_EN)

    brand_title, brand = rng.choice(_BRANDS)
    return {
        "std": std,
        "brand": brand,
        "brand_title": brand_title,
        "language": _pick(rng, ["ko", "mixed", "en"], [60, 25, 15]),
        "prefix": rng.choice(_PREFIXES_KO) if rng.random() < 0.2 else "",
        "code": f"{rng.choice('ABCDGKMPSTX')}{rng.choice('ABCDGKMPSTX')}{rng.randrange(100, 999)}" if rng.random() < 0.35 else "",
        "words": words[:3],
        "fit_ko": fit_ko,
        "fit_en": fit_en,
        "noun_ko": noun_ko,
        "noun_en": noun_en,
        "price": rng.randrange(p_lo // 100, p_hi // 100) * 100,
        "colour_style": rng.randrange(4),  # how this shop writes colours in titles; shared by the variants
    }


def _fibres(rng: random.Random, noun_ko: str, season: str) -> list[str]:
    """One main fibre from the season (denim is cotton); 30% get a second fibre (often spandex for stretch)."""
    if "데님" in noun_ko:
        fibres = ["Cotton"]
    else:
        fw = _FIBRE_BY_SEASON[season]
        fibres = [_pick(rng, list(fw), list(fw.values()))]
    if rng.random() < 0.3:
        second = _pick(rng, ["Polyurethane", "Polyester", "Nylon", "Cotton", "Wool"], [4, 3, 1, 1, 1])
        if second not in fibres and not (second == "Wool" and season == "summer"):
            fibres.append(second)
    return fibres


def _fabric(rng: random.Random, category: str, season: str, fibres: list[str]) -> tuple[str, str, str]:
    """(isfleece, elasticity, transparency), consistent with the season and the fibres."""
    fleece_p = {"winter": 0.45, "spring&fall": 0.1, "summer": 0.0}[season]
    isfleece = "fleece_contain" if rng.random() < fleece_p else "fleece_none"
    if "Polyurethane" in fibres:
        elasticity = _pick(rng, ["contain", "contain a lot"], [6, 4])
    elif category == "02top_03sweater" or "Wool" in fibres:
        elasticity = _pick(rng, ["contain little", "contain", "none"], [5, 3, 2])
    else:
        elasticity = _pick(rng, ["none", "none at all", "contain little"], [6, 2, 3])
    sheer_p = 0.35 if season == "summer" and category in ("02top_01blouse", "02top_04shirt", "03-1onepiece(dress)") else 0.05
    transparency = _pick(rng, ["contain little", "contain"], [8, 2]) if rng.random() < sheer_p else _pick(
        rng, ["none", "none at all"], [7, 3])
    return isfleece, elasticity, transparency


def _kind_fields(rng: random.Random, std: dict[str, Any], spec: str, noun_ko: str, fibres: list[str]) -> list[str]:
    """The fields of the product's kind (top, pants, skirt) into `std`, the noun's own facts winning; returns the
    fibres (linen nouns are hemp)."""
    category, season = std["category"], std["season"]
    if spec in ("outer", "top", "onepiece"):
        std.update(_top_fields(rng, category, season))
        # the noun must not contradict the attributes ("반팔 티셔츠" has short sleeves, "린넨 셔츠" is linen)
        if "반팔" in noun_ko:
            std["top.sleeve_length_type"] = "short sleeves"
        elif "긴팔" in noun_ko:
            std["top.sleeve_length_type"] = "long sleeves"
        if "후드" in noun_ko:
            std["top.neck_color_design"] = "hood"
        if "롱" in noun_ko:
            std["top.length_type"] = "long"
    elif category == "04bottom_01pants":
        std["pant.silhouette"] = "wide" if "와이드" in noun_ko else _pick(
            rng, ["normal", "wide", "skinny", "loose", "bell-bottom", "Others"], [5, 4, 2, 2, 1, 1])
    else:
        std["skirt.design"] = _pick(rng, ["A-line and bell line", "mermaid line", "Others"], [6, 2, 2])
    if "린넨" in noun_ko:
        fibres = ["Hemp"] + [f for f in fibres[1:] if f != "Hemp"]
        std["fiber_composition"] = fibres if len(fibres) > 1 else fibres[0]
    return fibres


def _title_words(rng: random.Random, std: dict[str, Any], noun_ko: str, fibres: list[str]) -> list:
    """Title words that say something true about the attributes (so titles carry signal, like real ones do)."""
    season, isfleece = std["season"], std["isfleece"]
    words: list[tuple[str, str, str]] = []  # (ko, en, re phrase)
    if "pant.silhouette" in std:
        words.append(_SILHOUETTE_WORDS[std["pant.silhouette"]])
    if "top.sleeve_length_type" in std and rng.random() < 0.6:
        words.append(_SLEEVE_WORDS[std["top.sleeve_length_type"]])
    if std.get("top.neck_color_design") in _NECK_WORDS and rng.random() < 0.5:
        words.append(_NECK_WORDS[std["top.neck_color_design"]])
    if std.get("top.length_type") in ("crop", "long") and rng.random() < 0.6:
        words.append(_LENGTH_WORDS[std["top.length_type"]])
    if isfleece == "fleece_contain":
        words.append(("기모", "Fleece-lined", "brushed fleece lining"))
    if rng.random() < 0.5:
        i = rng.randrange(len(_SEASON_KO[season]))
        words.append((_SEASON_KO[season][i], _SEASON_EN[season][min(i, 1)], _SEASON_RE[season][min(i, len(_SEASON_RE[season]) - 1)]))
    if rng.random() < 0.5 and "데님" not in noun_ko:
        ko, en, phrase = _FIBRE_WORDS[fibres[0]]
        words.append((ko, en, phrase))
    words = [w for w in words if w[0] not in noun_ko]  # no "반팔 반팔 티셔츠"
    rng.shuffle(words)
    return words


def _title(prod: dict[str, Any], colour: tuple[str, str, str]) -> str:
    """Korean, mixed or English title in the styles real shops use (see Musinsa/Myntra samples)."""
    en_col, ko_col, _ = colour
    words = prod["words"]
    style = prod["colour_style"]
    if prod["language"] == "en":
        parts = [prod["brand_title"].title() if prod["brand_title"].isascii() else "", prod["fit_en"]]
        parts += [w[1] for w in words] + [prod["noun_en"]]
        return " ".join(p for p in parts + [en_col] if p)
    if prod["language"] == "ko":
        head = [prod["prefix"] or (prod["brand_title"] if not prod["brand_title"].isascii() else "")]
        body = [prod["fit_ko"]] + [w[0] for w in words] + [prod["noun_ko"]]
        col = f"({ko_col})" if style == 0 else ko_col
        return " ".join(p for p in head + body + [col] if p)
    # mixed: Korean body with English codes / colour suffix, sometimes an English adjective
    head = [prod["prefix"], prod["code"]]
    body = [prod["fit_en"] if style == 1 else prod["fit_ko"]] + [w[0] for w in words] + [prod["noun_ko"]]
    col = {0: f"({en_col.upper()})", 1: en_col.upper(), 2: f"[{en_col.upper()}]", 3: f"- {en_col}"}[style]
    return " ".join(p for p in head + body + [col] if p)


def _re_fields(rng: random.Random, prod: dict[str, Any], colour: tuple[str, str, str]) -> dict[str, list[str]]:
    """Free-text phrases derived from the attributes; each field is missing with some probability (real RE data
    is incomplete, and the model must cope)."""
    std = prod["std"]
    fibres = _as_list(std["fiber_composition"])
    out: dict[str, list[str]] = {}
    if rng.random() < 0.75:
        out["color"] = [colour[0].lower()]
    if rng.random() < 0.7:
        phrases = []
        if "데님" in prod["noun_ko"]:
            phrases.append("denim")
        if len(fibres) == 1:
            phrases.append(f"{_FIBRE_WORDS[fibres[0]][2]} 100%")
        else:
            main = rng.choice([95, 90, 80, 70, 60])
            phrases += [f"{_FIBRE_WORDS[fibres[0]][2]} {main}%", f"{_FIBRE_WORDS[fibres[1]][2]} {100 - main}%"]
        out["fiber_composition"] = phrases
    if rng.random() < 0.6:
        out["category"] = [prod["noun_en"].lower()]
    if rng.random() < 0.3:
        out["category_specification"] = [std["category_specification"]]
    meta = [w[2] for w in prod["words"]]
    if "pant.silhouette" not in std and (prod["fit_en"] in _FIT_RE or prod["fit_ko"] in _FIT_RE):
        meta.append(_FIT_RE.get(prod["fit_ko"], _FIT_RE.get(prod["fit_en"], "")))
    meta = [m for m in dict.fromkeys(meta) if m]
    if meta and rng.random() < 0.7:
        out["specification.metadata"] = meta
    return out


def _as_list(v: Any) -> list[str]:
    return v if isinstance(v, list) else [v]


def _distinct_colours(rng: random.Random, k: int) -> list[int]:
    """k different colour indices, popular colours (black, white, navy) more likely: variants of one product
    differ in colour, and real shops sell more black than lavender."""
    chosen: list[int] = []
    while len(chosen) < k:
        i = rng.choices(range(len(_COLOURS)), weights=_COLOUR_WEIGHTS, k=1)[0]
        if i not in chosen:
            chosen.append(i)
    return chosen


def generate(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` synthetic items in the KFASHION schema; the same seed always gives the same list.

    Items: id "demo-000000"..., a title, `std` (category-dependent fields, valid KFASHION values), `re` (free
    phrases, sometimes missing), `group` for products with 2-4 colour variants, extras `brand` and `price`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    n_groups = 0
    while len(items) < n:
        prod = _product(rng)
        size = _pick(rng, [1, 2, 3, 4], [45, 28, 17, 10])
        size = min(size, n - len(items))
        colours = _distinct_colours(rng, size)
        group = None
        if size > 1:
            group = f"demo-g{n_groups:05d}"
            n_groups += 1
        for ci in colours:
            colour = _COLOURS[ci]
            std = dict(prod["std"])
            std["color"] = colour[2]
            item: dict[str, Any] = {
                "id": f"demo-{len(items):06d}",
                "title": _title(prod, colour),
                "std": std,
            }
            if rng.random() > 0.1:  # 10% of items have no re at all
                re_ = _re_fields(rng, prod, colour)
                if re_:
                    item["re"] = re_
            if group is not None:
                item["group"] = group
            item["brand"] = prod["brand"]
            item["price"] = prod["price"] + (rng.choice([0, 0, 0, 1000, 2000]) if size > 1 else 0)
            items.append(item)
    return items
