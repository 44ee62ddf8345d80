"""Generated people: names weighted like southern Shanxi's, ages, valid ID numbers of the district, phones —
shared by the register generator and each capability's demo (forces' helpers, checkpoints' travellers)."""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect

from bihuan.core import crypto
from bihuan.core.personal import id_checksum, mask_phone

REGION = "141002"  # 尧都区 administrative division code

# Surnames with weights (per mille; common ones of southern Shanxi raised, southern ones lowered).
SURNAMES = (
    "王71 李70 张67 刘54 陈40 杨31 赵24 郭22 吴18 周17 徐14 孙15 马15 朱11 胡11 何9 高12 贾12 武10 段8 "
    "闫9 薛8 乔7 柴6 卫5 席4 吉4 亢3 申5 梁8 宋8 韩8 冯7 邓5 曹7 彭5 田7 董6 袁5 潘4 于5 蒋4 蔡4 "
    "杜6 程5 苏5 魏6 吕5 丁5 任6 沈3 姚5 卢4 姜4 崔5 范5 石5 白6 孟5 秦5 史5 侯5 郝5 常5 毛3 邵3 "
    "牛4 康4 尹3 雷3 畅2 靳3 霍3 景3 翟3 樊3 解2 尉2"
).split()
_SURNAME_LIST = [s[0] for s in SURNAMES]
_SURNAME_CUM: list[float] = []
_total = 0.0
for _s in SURNAMES:
    _total += int(_s[1:])
    _SURNAME_CUM.append(_total)
_SURNAME_TOTAL = _total

# Given-name characters by generation (born before 1970, 1970–1999, since 2000) and sex.
GIVEN = {
    ("old", "M"): "建国华军强平明伟刚勇峰斌志红兵卫东海涛文武忠林胜利庆福贵宝生春有永长金山德保成",
    ("old", "F"): "秀英桂兰玉珍凤芳霞丽红梅琴燕萍云素花莲翠娥香淑荣彩月娟爱平菊",
    ("mid", "M"): "磊鹏超飞杰亮强伟斌涛浩波军辉龙刚晓剑锋宇俊凯东健昊帅明",
    ("mid", "F"): "婷娜静丹敏倩蕾娟艳丽霞晶燕琳慧洁雪颖芳璐瑶晓佳",
    ("young", "M"): "浩宇轩然子涵博文俊杰睿泽天佑晨阳一鸣思远皓哲奕辰铭瑞豪瀚恒嘉毅梓",
    ("young", "F"): "欣怡梓涵雨萱诗琪婷雪佳悦雅琳思彤可馨语桐静瑶若曦梦洁晓妍紫",
}
SINGLE_GIVEN_CHANCE = {"old": 0.2, "mid": 0.3, "young": 0.08}
PHONE_PREFIXES = [f"13{d}" for d in range(10)] + ["150", "151", "152", "153", "155", "156", "157", "158",
                                                   "159", "180", "181", "182", "183", "184", "185", "186",
                                                   "187", "188", "189", "173", "175", "176", "177", "178",
                                                   "191", "198", "199"]


class People:
    """Names, ages, ID numbers and phones. Keeps the per-birth-date serial counters and used phones."""

    def __init__(self, rng: random.Random, today: dt.date):
        self.rng = rng
        self.today = today
        self.today_ord = today.toordinal()
        self.serials: dict[int, int] = {}
        self.phones: set[str] = set()
        self._day: dict[int, tuple[str, str]] = {}
        # ordinal of "today minus n years" (29 February falls back to the 28th)
        self._years_ago = []
        for n in range(0, 111):
            try:
                d = today.replace(year=today.year - n)
            except ValueError:
                d = today.replace(year=today.year - n, day=28)
            self._years_ago.append(d.toordinal())
        # serial order within a birth date: a fixed permutation, so tails spread over 000–999
        perm = list(range(500))
        random.Random(11643).shuffle(perm)
        self._perm = perm
        self._given = {k: list(v) for k, v in GIVEN.items()}

    def surname(self) -> str:
        return _SURNAME_LIST[bisect(_SURNAME_CUM, self.rng.random() * _SURNAME_TOTAL)]

    def given(self, sex: str, birth_year: int) -> str:
        gen = "old" if birth_year < 1970 else ("mid" if birth_year < 2000 else "young")
        chars = self._given[(gen, sex)]
        rng = self.rng
        if rng.random() < SINGLE_GIVEN_CHANCE[gen]:
            return chars[int(rng.random() * len(chars))]
        n = len(chars)
        return chars[int(rng.random() * n)] + chars[int(rng.random() * n)]

    def birth(self, age: int) -> int:
        """A birth date (ordinal) for someone who is ``age`` today."""
        return self._years_ago[age] - int(self.rng.random() * 365)

    def day(self, ordinal: int) -> tuple[str, str]:
        """(ISO date, YYYYMMDD) of an ordinal, cached."""
        v = self._day.get(ordinal)
        if v is None:
            d = dt.date.fromordinal(ordinal)
            v = self._day[ordinal] = (d.isoformat(), d.strftime("%Y%m%d"))
        return v

    def id_number(self, birth_ord: int, male: bool) -> tuple[int, str]:
        """A unique valid ID number; returns (birth ordinal actually used, number)."""
        while True:
            key = birth_ord * 2 + male
            n = self.serials.get(key, 0)
            if n < 500:
                self.serials[key] = n + 1
                break
            birth_ord -= 1  # 500 people of one sex born on one day: the next one is a day older
        serial = ((self._perm[(n + birth_ord) % 500]) * 2 + male) % 1000
        body = f"{REGION}{self.day(birth_ord)[1]}{serial:03d}"
        return birth_ord, body + id_checksum(body)

    def phone(self) -> str:
        rng = self.rng
        while True:
            p = PHONE_PREFIXES[int(rng.random() * len(PHONE_PREFIXES))] + f"{int(rng.random() * 1e8):08d}"
            if p not in self.phones:
                self.phones.add(p)
                return p


def _sealed_phone(phone: str) -> tuple[bytes, str, str, str]:
    if not phone:
        return b"", "", "", ""
    return crypto.seal(phone), crypto.lookup_hash("phone", phone), mask_phone(phone), phone[-4:]

