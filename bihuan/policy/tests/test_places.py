"""The one place-name parser: every case the risk-area matcher and the address router rely on, in one place."""

from __future__ import annotations

import pytest

from bihuan.policy import places


@pytest.mark.parametrize("name, segments", [
    ("上海市浦东新区", (("上海市", "上海"), ("浦东新区", "浦东"))),
    ("北京市朝阳区", (("北京市", "北京"), ("朝阳区", "朝阳"))),
    ("吉林省长春市", (("吉林省", "吉林"), ("长春市", "长春"))),
    ("新疆维吾尔自治区乌鲁木齐市", (("新疆维吾尔自治区", "新疆"), ("乌鲁木齐市", "乌鲁木齐"))),
    ("湖北省荆州市沙市区", (("湖北省", "湖北"), ("荆州市", "荆州"), ("沙市区", "沙市"))),
    ("浦东新区", (("浦东新区", "浦东"),)),
    ("上海市浦东新区张江镇", (("上海市", "上海"), ("浦东新区", "浦东"), ("张江镇", "张江"))),
    ("香港特别行政区", (("香港特别行政区", "香港"),)),
])
def test_a_full_name_is_cut_into_its_parts_with_their_stems(name, segments):
    assert places.name_segments(name) == segments


@pytest.mark.parametrize("name, kind, short", [
    ("东羊村", "community", "东羊"),
    ("鼓楼社区居民委员会", "community", "鼓楼"),
    ("解放路街道办事处", "township", "解放路"),
    ("屯里镇", "township", "屯里"),
    ("锦悦小区", "compound", "锦悦"),
    ("大村", "community", "大村"),  # one character would be left: the name stays whole
    ("东羊村", "township", "东羊村"),  # not a township's suffix
])
def test_a_units_short_name_drops_the_suffix_of_its_kind(name, kind, short):
    assert places.strip_suffix(name, kind) == short


@pytest.mark.parametrize("address, rest, dropped", [
    ("山西省临汾市尧都区解放路", "尧都区解放路", True),
    ("临汾市尧都区", "尧都区", True),
    ("新疆维吾尔自治区乌鲁木齐市天山区", "天山区", True),
    ("中国北京市朝阳区", "朝阳区", True),
    ("解放路街道鼓楼社区", "解放路街道鼓楼社区", False),
    ("北京市", "北京市", False),  # nothing would be left: kept as it is
])
def test_the_province_and_city_in_front_of_an_address_are_dropped(address, rest, dropped):
    assert places.strip_region(places.normalize(address)) == (rest, dropped)


def test_a_county_at_the_start_is_recognised():
    assert places.county_at_start("朝阳区三里屯") == "朝阳区"
    assert places.county_at_start("解放路") == ""


@pytest.mark.parametrize("text, normal", [
    ("  解放路 ３号楼（东）", "解放路3号楼东"),
    ("ＡＢＣ小区·5#", "abc小区5#"),
])
def test_addresses_are_normalised_full_width_case_and_punctuation(text, normal):
    assert places.normalize(text) == normal


def test_place_names_keep_their_characters_but_not_spaces():
    assert places.normalize_place(" 上海市 浦东新区 ３１０１１５ ") == "上海市浦东新区310115"


@pytest.mark.parametrize("code, prefix", [
    ("310000", "31"), ("310100", "3101"), ("310115", "310115"), ("310115125000", "310115125"),
    ("３１０１１５", "310115"), ("abc", ""),
])
def test_an_area_code_keeps_its_significant_digits(code, prefix):
    assert places.code_prefix(code) == prefix


def test_codes_are_found_in_a_place_text():
    assert places.codes_in("浦东 310115 张江 310115125000 电话13800000000") == ["310115", "310115125"]


@pytest.mark.parametrize("text, parts", [
    ("北京市、天津市→石家庄", ["北京市", "天津市", "石家庄"]),
    ("上海-->南京—合肥", ["上海", "南京", "合肥"]),
    ("", []),
])
def test_a_route_is_split_into_its_places(text, parts):
    assert places.split_places(text) == parts


@pytest.mark.parametrize("rest, found", [
    ("3号楼2单元", ("3", "")), ("十二栋", ("12", "")), ("五幢", ("5", "")), ("a3#楼", ("a3", "")),
    ("12号", ("", "12")), ("东门", ("", "")),
])
def test_a_building_or_house_number_after_a_compound_name(rest, found):
    assert places.building_or_house(rest) == found


def test_whether_a_text_names_an_administrative_place():
    assert places.names_a_place("长春市") and not places.names_a_place("中国") and not places.names_a_place("来自")
