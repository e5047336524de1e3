"""Data tables behind the synthetic population: who lives where, how old, with which names.

Figures are rounded public statistics, good enough to make a realistic population, not to quote:

- populations of the 63 pre-2025 provinces: GSO average population 2023 (Niên giám thống kê 2023);
- age and sex structure: GSO population estimates for 2024 (0-14 about 23%, 65+ about 9%);
- ethnic groups, religions, household sizes: 2019 Population and Housing Census (GSO);
- surnames: the commonly cited national shares (Nguyễn 38%, Trần 11%, Lê 9.5%, ...).

Per-province tables are keyed by the pre-2025 three-digit code: ethnic and religious make-up is
known per old province, and a 2025 province can join very different ones (Trà Vinh and Bến Tre).
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------ provinces

# Average population 2023, thousands, by pre-2025 province (GSO statistical yearbook 2023).
OLD_PROVINCE_POPULATION: dict[str, int] = {
    "001": 8587, "002": 899, "004": 543, "006": 326, "008": 801, "010": 770, "011": 636,
    "012": 482, "014": 1300, "015": 847, "017": 877, "019": 1335, "020": 802, "022": 1363,
    "024": 1922, "025": 1511, "026": 1212, "027": 1517, "030": 1956, "031": 2106, "033": 1290,
    "034": 1883, "035": 886, "036": 1877, "037": 1010, "038": 3739, "040": 3442, "042": 1323,
    "044": 913, "045": 650, "046": 1166, "048": 1245, "049": 1519, "051": 1249, "052": 1506,
    "054": 877, "056": 1253, "058": 598, "060": 1256, "062": 580, "064": 1590, "066": 1918,
    "067": 670, "068": 1332, "070": 1032, "072": 1188, "074": 2764, "075": 3310, "077": 1187,
    "079": 9522, "080": 1738, "082": 1790, "083": 1300, "084": 1020, "086": 1029, "087": 1600,
    "089": 1906, "091": 1761, "092": 1260, "093": 730, "094": 1198, "095": 921, "096": 1207,
}

# First ward code of each pre-2025 province in the GSO list (from the vietnam-provinces 0.6.0
# data). A 2025 commune keeps the code of one of the wards it merged, so these starts tell which
# old province a commune of a merged 2025 province lies in.
OLD_WARD_CODE_START: dict[str, int] = {
    "001": 1, "002": 688, "004": 1267, "006": 1834, "008": 2200, "010": 2635, "011": 3124,
    "012": 3386, "014": 3646, "015": 4249, "017": 4789, "019": 5431, "020": 5971, "022": 6649,
    "024": 7201, "025": 7888, "026": 8707, "027": 9163, "030": 10507, "031": 11296, "033": 11950,
    "034": 12433, "035": 13285, "036": 13636, "037": 14320, "038": 14755, "040": 16663,
    "042": 18073, "044": 18853, "045": 19330, "046": 19750, "048": 20194, "049": 20335,
    "051": 21010, "052": 21550, "054": 22015, "056": 22327, "058": 22738, "060": 22915,
    "062": 23281, "064": 23557, "066": 24118, "067": 24611, "068": 24769, "070": 25195,
    "072": 25456, "074": 25741, "075": 25993, "077": 26506, "079": 26734, "080": 27685,
    "082": 28249, "083": 28756, "084": 29236, "086": 29542, "087": 29869, "089": 30280,
    "091": 30733, "092": 31117, "093": 31318, "094": 31498, "095": 31813, "096": 31999,
}

# 2025 provinces where Huỳnh and Võ outnumber Hoàng and Vũ: the former Đàng Trong, where the
# names of the Nguyễn lords were avoided; their surname mix differs from the north's.
SOUTHERN_PROVINCES: frozenset[str] = frozenset({
    "44", "46", "48", "51", "52", "56", "66", "68", "75", "79", "80", "82", "86", "91", "92", "96",
})

# The south (Southeast and Mekong delta): a rural hamlet is an "ấp", and town houses in an alley
# are numbered "alley/house" ("123/45 Lê Văn Sỹ").
HAMLET_PROVINCES: frozenset[str] = frozenset({"75", "79", "80", "82", "86", "91", "92", "96"})

# Northern mountain provinces: villages are "bản" more often than "thôn".
MOUNTAIN_PROVINCES: frozenset[str] = frozenset({"04", "08", "11", "12", "14", "15", "20"})

# ------------------------------------------------------------------------------ age and households

# (lowest age of the 5-year group, men, women), thousands, 2024; the last group is 100-104.
AGE_PYRAMID: tuple[tuple[int, int, int], ...] = (
    (0, 3764, 3386), (5, 4237, 3813), (10, 4295, 3905), (15, 3661, 3389), (20, 3534, 3366),
    (25, 3704, 3596), (30, 4141, 4059), (35, 4020, 3980), (40, 3650, 3650), (45, 3267, 3333),
    (50, 2939, 3061), (55, 2650, 2850), (60, 2200, 2500), (65, 1667, 2033), (70, 1029, 1371),
    (75, 557, 843), (80, 319, 581), (85, 174, 386), (90, 69, 181), (95, 18, 62), (100, 3, 12),
)
MAX_AGE = 104

# Share of households by number of members (the last one is 7 or more); mean about 3.45.
HOUSEHOLD_SIZES: tuple[float, ...] = (0.105, 0.195, 0.22, 0.26, 0.125, 0.06, 0.035)

# Boys per girl at birth by year of birth: about 1.06 before 2000, 1.11-1.12 since 2010.
SEX_RATIO_AT_BIRTH: tuple[tuple[int, float], ...] = ((1999, 1.06), (2006, 1.10), (2010, 1.12))

# Completed children per woman by her year of birth (drives family sizes).
FERTILITY_BY_COHORT: tuple[tuple[int, float], ...] = (
    (1930, 5.0), (1950, 3.8), (1960, 2.9), (1970, 2.3), (1980, 2.1), (1995, 1.9),
)

# ----------------------------------------------------------------------------------- migration

# Share of households whose adults were born in another province; the rest of the country 5%.
IN_MIGRATION: dict[str, float] = {
    "79": 0.30, "01": 0.18, "75": 0.22, "24": 0.12, "31": 0.08, "48": 0.10, "68": 0.15,
    "66": 0.15, "52": 0.10, "51": 0.06, "56": 0.08,
}
DEFAULT_IN_MIGRATION = 0.05
# Pre-2025 provinces people leave more (north central coast, Red River and Mekong deltas) or less.
OUT_MIGRATION: dict[str, float] = {
    "034": 1.6, "035": 1.5, "036": 1.6, "030": 1.3, "038": 1.6, "040": 1.7, "042": 1.6, "044": 1.4,
    "045": 1.4, "049": 1.3, "051": 1.3, "052": 1.3, "082": 1.4, "083": 1.6, "084": 1.5, "086": 1.5,
    "087": 1.5, "089": 1.5, "091": 1.3, "093": 1.4, "094": 1.5, "095": 1.4, "096": 1.5,
    "001": 0.4, "079": 0.4, "074": 0.5, "075": 0.6,
}

# --------------------------------------------------------------------------------- ethnic groups

ETHNIC_GROUPS: tuple[str, ...] = (
    "Kinh", "Tày", "Thái", "Mường", "H'Mông", "Khmer", "Nùng", "Dao", "Hoa", "Gia Rai", "Ê Đê",
    "Ba Na", "Sán Chay", "Chăm", "Cơ Ho", "Xơ Đăng", "Sán Dìu", "Hrê", "Raglai", "M'Nông", "Thổ",
    "Xtiêng", "Khơ Mú", "Bru Vân Kiều", "Cơ Tu", "Giáy", "Tà Ôi", "Mạ", "Giẻ Triêng", "Co",
    "Chơ Ro", "Hà Nhì", "Xinh Mun", "Chu Ru", "Lào", "La Chí", "Kháng", "Phù Lá", "Lự", "Chứt",
)

# Percent of each pre-2025 province's people by ethnic group (2019 census); Kinh is the rest.
ETHNIC_MIX: dict[str, dict[str, float]] = {
    "001": {"Mường": 0.8, "Tày": 0.3, "Thái": 0.1, "Nùng": 0.1, "Dao": 0.1, "Hoa": 0.1},
    "002": {"H'Mông": 33.6, "Tày": 23.3, "Dao": 15.1, "Nùng": 9.6, "Giáy": 2.2, "La Chí": 1.6, "Phù Lá": 0.7},
    "004": {"Tày": 40.8, "Nùng": 31.1, "H'Mông": 10.1, "Dao": 10.1, "Sán Chay": 1.1},
    "006": {"Tày": 52.5, "Dao": 17.3, "Nùng": 9.6, "H'Mông": 6.5, "Hoa": 0.3},
    "008": {"Tày": 25.6, "Dao": 11.6, "Sán Chay": 8.6, "H'Mông": 2.6, "Nùng": 1.4, "Sán Dìu": 1.2},
    "010": {"H'Mông": 25.8, "Tày": 15.3, "Dao": 14.5, "Giáy": 5.0, "Nùng": 4.2, "Hà Nhì": 2.6, "Phù Lá": 1.5},
    "011": {"H'Mông": 37.5, "Thái": 34.2, "Khơ Mú": 3.3, "Hà Nhì": 1.1, "Lào": 1.1, "Dao": 1.0},
    "012": {"H'Mông": 35.4, "Thái": 32.5, "Dao": 13.6, "Hà Nhì": 3.4, "Giáy": 3.0, "Lự": 1.3},
    "014": {"Thái": 53.2, "H'Mông": 17.0, "Mường": 7.8, "Xinh Mun": 2.0, "Dao": 1.6, "Khơ Mú": 1.3,
            "Kháng": 1.0},
    "015": {"Tày": 19.4, "Dao": 11.5, "H'Mông": 11.4, "Thái": 6.5, "Mường": 2.2, "Nùng": 0.6},
    "017": {"Mường": 63.3, "Thái": 3.9, "Tày": 2.7, "Dao": 1.9, "H'Mông": 0.5},
    "019": {"Tày": 10.7, "Nùng": 5.6, "Sán Dìu": 3.4, "Sán Chay": 2.2, "Dao": 2.0, "H'Mông": 0.7},
    "020": {"Nùng": 42.9, "Tày": 35.9, "Dao": 3.5, "Sán Chay": 0.5, "Hoa": 0.3},
    "022": {"Dao": 4.7, "Tày": 3.6, "Sán Dìu": 1.7, "Sán Chay": 1.5, "Hoa": 0.4, "Nùng": 0.3},
    "024": {"Nùng": 4.6, "Tày": 2.6, "Sán Chay": 1.9, "Sán Dìu": 1.8, "Hoa": 1.0, "Dao": 0.7},
    "025": {"Mường": 12.7, "Dao": 1.2, "Tày": 0.3, "Sán Chay": 0.2},
    "026": {"Sán Dìu": 2.6, "Tày": 0.2},
    "027": {"Tày": 0.1, "Nùng": 0.1},
    "037": {"Mường": 2.0},
    "038": {"Mường": 10.4, "Thái": 6.8, "H'Mông": 0.5, "Thổ": 0.2, "Dao": 0.2},
    "040": {"Thái": 9.7, "Thổ": 2.2, "Khơ Mú": 1.4, "H'Mông": 1.0},
    "042": {"Chứt": 0.1},
    "044": {"Bru Vân Kiều": 2.2, "Chứt": 0.6},
    "045": {"Bru Vân Kiều": 10.3, "Tà Ôi": 4.4},
    "046": {"Tà Ôi": 3.8, "Cơ Tu": 1.4, "Bru Vân Kiều": 0.5},
    "048": {"Cơ Tu": 0.2, "Hoa": 0.1},
    "049": {"Cơ Tu": 4.0, "Xơ Đăng": 3.0, "Giẻ Triêng": 1.5, "Co": 0.3},
    "051": {"Hrê": 10.8, "Co": 2.4, "Xơ Đăng": 1.5},
    "052": {"Ba Na": 1.6, "Hrê": 0.8, "Chăm": 0.3},
    "054": {"Chăm": 2.6, "Ê Đê": 2.4, "Ba Na": 0.5},
    "056": {"Raglai": 4.3, "Ê Đê": 0.5, "Hoa": 0.5, "Cơ Ho": 0.4},
    "058": {"Chăm": 12.0, "Raglai": 10.8, "Cơ Ho": 0.4, "Hoa": 0.3},
    "060": {"Chăm": 3.0, "Raglai": 1.5, "Hoa": 0.9, "Cơ Ho": 0.4},
    "062": {"Xơ Đăng": 25.0, "Ba Na": 12.9, "Giẻ Triêng": 6.3, "Gia Rai": 4.3},
    "064": {"Gia Rai": 31.3, "Ba Na": 14.6, "Tày": 0.6, "Nùng": 0.5},
    "066": {"Ê Đê": 18.9, "Nùng": 4.7, "Tày": 3.7, "M'Nông": 2.5, "H'Mông": 1.5, "Dao": 1.2,
            "Thái": 1.0, "Gia Rai": 1.0, "Mường": 1.0},
    "067": {"M'Nông": 10.0, "Nùng": 6.4, "Tày": 5.0, "Dao": 3.6, "H'Mông": 3.5, "Mạ": 1.3,
            "Ê Đê": 0.9, "Thái": 0.9},
    "068": {"Cơ Ho": 12.6, "Mạ": 2.5, "Chu Ru": 1.7, "Nùng": 1.7, "Tày": 1.5, "Hoa": 0.8},
    "070": {"Xtiêng": 9.2, "Nùng": 2.3, "Tày": 2.2, "Khmer": 1.6, "M'Nông": 1.0, "Hoa": 0.6},
    "072": {"Khmer": 0.7, "Chăm": 0.3, "Hoa": 0.3},
    "074": {"Hoa": 0.7, "Khmer": 0.6, "Tày": 0.3, "Nùng": 0.3, "Mường": 0.2},
    "075": {"Hoa": 2.8, "Nùng": 1.2, "Tày": 1.0, "Chơ Ro": 0.6, "Khmer": 0.3, "Dao": 0.2},
    "077": {"Hoa": 1.2, "Chơ Ro": 0.6},
    "079": {"Hoa": 4.0, "Khmer": 0.5, "Tày": 0.2, "Nùng": 0.2, "Chăm": 0.1, "Mường": 0.1},
    "080": {"Khmer": 0.1, "Hoa": 0.1},
    "084": {"Khmer": 31.5, "Hoa": 0.6},
    "086": {"Khmer": 2.1, "Hoa": 0.4},
    "089": {"Khmer": 4.3, "Chăm": 0.6, "Hoa": 0.3},
    "091": {"Khmer": 12.3, "Hoa": 1.8},
    "092": {"Khmer": 1.5, "Hoa": 1.2},
    "093": {"Khmer": 2.0, "Hoa": 0.4},
    "094": {"Khmer": 30.2, "Hoa": 5.6},
    "095": {"Khmer": 8.8, "Hoa": 2.9},
    "096": {"Khmer": 2.2, "Hoa": 0.3},
}

# ------------------------------------------------------------------------------------ religions

RELIGIONS: tuple[str, ...] = (
    "Không", "Phật giáo", "Công giáo", "Tin lành", "Cao Đài", "Hòa Hảo", "Hồi giáo", "Bà La Môn",
)
# Percent of Kinh people by registered religion, per pre-2025 province; "Không" (none) is the rest.
KINH_RELIGION_DEFAULT: dict[str, float] = {"Phật giáo": 1.5, "Công giáo": 3.0, "Tin lành": 0.2}
KINH_RELIGION: dict[str, dict[str, float]] = {
    "001": {"Phật giáo": 2.5, "Công giáo": 2.5, "Tin lành": 0.3},
    "030": {"Phật giáo": 1.5, "Công giáo": 1.5},
    "031": {"Phật giáo": 3.0, "Công giáo": 3.2},
    "034": {"Phật giáo": 1.0, "Công giáo": 7.5},
    "035": {"Phật giáo": 1.5, "Công giáo": 6.5},
    "036": {"Phật giáo": 1.5, "Công giáo": 15.5, "Tin lành": 0.2},
    "037": {"Phật giáo": 2.0, "Công giáo": 16.0},
    "038": {"Phật giáo": 0.5, "Công giáo": 4.5},
    "040": {"Phật giáo": 0.3, "Công giáo": 8.5},
    "042": {"Phật giáo": 0.3, "Công giáo": 11.0},
    "044": {"Phật giáo": 0.6, "Công giáo": 8.0},
    "045": {"Phật giáo": 4.0, "Công giáo": 5.0, "Tin lành": 0.3},
    "046": {"Phật giáo": 18.0, "Công giáo": 3.0, "Tin lành": 0.3},
    "048": {"Phật giáo": 10.0, "Công giáo": 3.5, "Tin lành": 0.5, "Cao Đài": 1.5},
    "049": {"Phật giáo": 8.0, "Công giáo": 2.0, "Tin lành": 0.3, "Cao Đài": 1.5},
    "051": {"Phật giáo": 4.0, "Công giáo": 0.6, "Cao Đài": 0.4},
    "052": {"Phật giáo": 6.0, "Công giáo": 2.0, "Tin lành": 0.5, "Cao Đài": 0.5},
    "054": {"Phật giáo": 5.0, "Công giáo": 4.0, "Tin lành": 0.5, "Cao Đài": 0.8},
    "056": {"Phật giáo": 10.0, "Công giáo": 7.0, "Tin lành": 0.5, "Cao Đài": 0.8},
    "058": {"Phật giáo": 6.0, "Công giáo": 6.0, "Tin lành": 0.5},
    "060": {"Phật giáo": 10.0, "Công giáo": 9.0, "Tin lành": 0.5, "Cao Đài": 1.0},
    "062": {"Phật giáo": 4.0, "Công giáo": 8.0, "Tin lành": 0.5},
    "064": {"Phật giáo": 4.0, "Công giáo": 8.0, "Tin lành": 1.0},
    "066": {"Phật giáo": 6.0, "Công giáo": 12.0, "Tin lành": 2.0, "Cao Đài": 0.5},
    "067": {"Phật giáo": 6.0, "Công giáo": 10.0, "Tin lành": 3.0},
    "068": {"Phật giáo": 12.0, "Công giáo": 27.0, "Tin lành": 1.5, "Cao Đài": 0.5},
    "070": {"Phật giáo": 6.0, "Công giáo": 12.0, "Tin lành": 1.0, "Cao Đài": 1.0},
    "072": {"Phật giáo": 8.0, "Công giáo": 3.0, "Cao Đài": 20.0},
    "074": {"Phật giáo": 6.0, "Công giáo": 7.0, "Tin lành": 0.5, "Cao Đài": 1.0},
    "075": {"Phật giáo": 7.0, "Công giáo": 33.0, "Tin lành": 1.0, "Cao Đài": 1.0},
    "077": {"Phật giáo": 12.0, "Công giáo": 18.0, "Tin lành": 1.0, "Cao Đài": 1.0},
    "079": {"Phật giáo": 8.0, "Công giáo": 9.0, "Tin lành": 1.0, "Cao Đài": 0.8, "Hòa Hảo": 0.2},
    "080": {"Phật giáo": 5.0, "Công giáo": 2.0, "Cao Đài": 2.0, "Hòa Hảo": 0.2},
    "082": {"Phật giáo": 8.0, "Công giáo": 3.0, "Cao Đài": 3.0, "Hòa Hảo": 0.5},
    "083": {"Phật giáo": 6.0, "Công giáo": 3.0, "Cao Đài": 4.0},
    "084": {"Phật giáo": 6.0, "Công giáo": 3.0, "Cao Đài": 2.0},
    "086": {"Phật giáo": 6.0, "Công giáo": 3.0, "Cao Đài": 2.0, "Hòa Hảo": 1.5},
    "087": {"Phật giáo": 8.0, "Công giáo": 2.0, "Cao Đài": 2.0, "Hòa Hảo": 12.0},
    "089": {"Phật giáo": 8.0, "Công giáo": 2.0, "Cao Đài": 1.0, "Hòa Hảo": 37.0},
    "091": {"Phật giáo": 8.0, "Công giáo": 3.0, "Cao Đài": 2.0, "Hòa Hảo": 5.0},
    "092": {"Phật giáo": 9.0, "Công giáo": 3.0, "Cao Đài": 2.0, "Hòa Hảo": 8.0},
    "093": {"Phật giáo": 5.0, "Công giáo": 1.0, "Cao Đài": 2.0, "Hòa Hảo": 10.0},
    "094": {"Phật giáo": 5.0, "Công giáo": 2.0, "Cao Đài": 1.0, "Hòa Hảo": 1.0},
    "095": {"Phật giáo": 5.0, "Công giáo": 2.0, "Cao Đài": 2.0},
    "096": {"Phật giáo": 5.0, "Công giáo": 2.0, "Cao Đài": 1.5},
}
# Ethnic minorities follow their group's faith wherever they live; unlisted groups use the default.
MINORITY_RELIGION_DEFAULT: dict[str, float] = {"Công giáo": 1.0, "Tin lành": 1.0}
MINORITY_RELIGION: dict[str, dict[str, float]] = {
    "Khmer": {"Phật giáo": 92.0, "Công giáo": 0.5, "Tin lành": 0.5},
    "Hoa": {"Phật giáo": 20.0, "Công giáo": 5.0, "Tin lành": 1.0},
    "H'Mông": {"Tin lành": 18.0, "Công giáo": 3.0},
    "Dao": {"Tin lành": 2.0, "Công giáo": 1.0},
    "Tày": {"Phật giáo": 0.5, "Công giáo": 0.5, "Tin lành": 0.5},
    "Thái": {"Công giáo": 0.2},
    "Mường": {"Công giáo": 1.0},
    "Gia Rai": {"Tin lành": 25.0, "Công giáo": 15.0},
    "Ê Đê": {"Tin lành": 40.0, "Công giáo": 12.0},
    "Ba Na": {"Công giáo": 35.0, "Tin lành": 10.0},
    "Xơ Đăng": {"Công giáo": 40.0, "Tin lành": 3.0},
    "M'Nông": {"Tin lành": 35.0, "Công giáo": 15.0},
    "Cơ Ho": {"Công giáo": 45.0, "Tin lành": 25.0},
    "Mạ": {"Công giáo": 40.0, "Tin lành": 25.0},
    "Chu Ru": {"Công giáo": 40.0, "Tin lành": 25.0},
    "Xtiêng": {"Tin lành": 30.0, "Công giáo": 15.0},
    "Giẻ Triêng": {"Công giáo": 15.0},
    "Raglai": {"Tin lành": 5.0, "Công giáo": 3.0},
    "Chăm": {"Hồi giáo": 35.0, "Bà La Môn": 35.0, "Phật giáo": 1.0},
    "Tà Ôi": {"Công giáo": 10.0, "Tin lành": 5.0},
}

# ---------------------------------------------------------------------------------------- names

# (surname, weight in the north, weight in the south), percent.
SURNAMES: tuple[tuple[str, float, float], ...] = (
    ("Nguyễn", 40.0, 40.0), ("Trần", 11.0, 11.0), ("Lê", 9.5, 9.5), ("Phạm", 7.0, 7.0),
    ("Hoàng", 4.6, 1.0), ("Huỳnh", 0.2, 4.0), ("Phan", 4.5, 4.5), ("Vũ", 3.6, 0.6),
    ("Võ", 0.5, 3.6), ("Đặng", 2.1, 2.1), ("Bùi", 2.0, 2.0), ("Đỗ", 1.4, 1.4), ("Hồ", 1.2, 1.4),
    ("Ngô", 1.3, 1.3), ("Dương", 1.0, 1.0), ("Lý", 0.5, 0.5), ("Trương", 0.5, 0.7),
    ("Đinh", 0.6, 0.4), ("Đào", 0.5, 0.3), ("Đoàn", 0.4, 0.4), ("Trịnh", 0.5, 0.3),
    ("Mai", 0.4, 0.4), ("Hà", 0.5, 0.3), ("Lâm", 0.2, 0.5), ("Cao", 0.3, 0.3), ("Lương", 0.3, 0.3),
    ("Tô", 0.2, 0.2), ("Phùng", 0.3, 0.1), ("Lưu", 0.2, 0.2), ("Tạ", 0.3, 0.1), ("Châu", 0.05, 0.3),
    ("Chu", 0.2, 0.1), ("Thái", 0.15, 0.15), ("Vương", 0.15, 0.15), ("Kiều", 0.15, 0.05),
    ("Lại", 0.15, 0.05), ("La", 0.1, 0.1), ("Triệu", 0.15, 0.05), ("Quách", 0.1, 0.1),
    ("Tăng", 0.05, 0.1), ("Từ", 0.05, 0.1), ("Hứa", 0.05, 0.1), ("Nghiêm", 0.1, 0.02),
    ("Tôn", 0.03, 0.05), ("Mạc", 0.05, 0.03), ("Giang", 0.05, 0.05), ("Thân", 0.08, 0.02),
    ("Doãn", 0.05, 0.02), ("Đàm", 0.08, 0.02), ("Kim", 0.03, 0.05), ("Diệp", 0.02, 0.06),
    ("Tống", 0.08, 0.03), ("Khúc", 0.03, 0.01), ("Cù", 0.03, 0.01), ("Phí", 0.04, 0.01),
    ("Ninh", 0.04, 0.01), ("Bạch", 0.03, 0.02), ("Âu", 0.02, 0.03), ("Văn", 0.03, 0.03),
    ("Nông", 0.05, 0.01), ("Vi", 0.03, 0.01), ("Mã", 0.02, 0.03), ("Lục", 0.03, 0.01),
)

# Surnames typical of an ethnic group, with weights; most of the group's members take one.
MINORITY_SURNAMES: dict[str, tuple[tuple[str, float], ...]] = {
    "Tày": (("Hoàng", 20), ("Nông", 15), ("Lương", 8), ("Ma", 6), ("Hà", 6), ("Triệu", 5),
            ("Lục", 4), ("Đinh", 4), ("Vi", 3), ("Lý", 3), ("Nguyễn", 8)),
    "Nùng": (("Hoàng", 20), ("Nông", 15), ("Lý", 10), ("Vi", 6), ("Lương", 5), ("Chu", 4),
             ("Lục", 4), ("Hứa", 3), ("Lăng", 3), ("Mã", 3)),
    "Thái": (("Lò", 20), ("Lường", 12), ("Hà", 10), ("Cầm", 8), ("Quàng", 6), ("Tòng", 6),
             ("Vì", 5), ("Lê", 4), ("Sầm", 3), ("Bạc", 3), ("Lộc", 3), ("Vi", 3)),
    "Mường": (("Bùi", 35), ("Đinh", 20), ("Quách", 10), ("Hà", 8), ("Xa", 5), ("Cao", 4),
              ("Bạch", 3), ("Nguyễn", 5)),
    "H'Mông": (("Giàng", 15), ("Sùng", 12), ("Vàng", 12), ("Thào", 10), ("Lý", 10), ("Mùa", 6),
               ("Lầu", 6), ("Hầu", 5), ("Sình", 5), ("Vừ", 5), ("Hạng", 4), ("Tráng", 3)),
    "Dao": (("Triệu", 25), ("Bàn", 20), ("Đặng", 15), ("Lý", 12), ("Phùng", 8), ("Chảo", 6),
            ("Tẩn", 5), ("Lò", 3)),
    "Khmer": (("Thạch", 25), ("Sơn", 15), ("Danh", 12), ("Kim", 10), ("Lâm", 8), ("Châu", 6),
              ("Trần", 5), ("Lý", 5), ("Huỳnh", 4), ("Kiên", 4)),
    "Hoa": (("Lý", 10), ("Trương", 10), ("Lâm", 10), ("Huỳnh", 8), ("Trần", 8), ("Quách", 6),
            ("Hứa", 6), ("Tăng", 6), ("Lưu", 6), ("Mã", 5), ("Lương", 5), ("Vương", 5),
            ("Châu", 5), ("Diệp", 4), ("Giang", 3)),
    "Gia Rai": (("Ksor", 22), ("Siu", 20), ("Nay", 12), ("Kpă", 10), ("Puih", 8), ("Rcom", 6),
                ("Rahlan", 5)),
    "Ê Đê": (("Niê", 20), ("Êban", 10), ("Mlô", 10), ("Byă", 8), ("Ayŭn", 6), ("Adrơng", 6),
             ("Ktla", 5), ("Hwing", 4)),
    "Ba Na": (("Đinh", 40), ("Nguyễn", 10)),
    "Chăm": (("Đàng", 15), ("Lộ", 10), ("Thiên", 8), ("Quảng", 8), ("Châu", 6), ("Thành", 6),
             ("Thuận", 5), ("Hán", 4), ("Bá", 4), ("Trượng", 3)),
}
MINORITY_SURNAME_SHARE = 0.75

# Middle names: most older women are "Thị" and many older men "Văn"; the share of each by year
# of birth is below. The others are drawn from these lists (weights).
THI_SHARE_BY_BIRTH_YEAR: tuple[tuple[int, float], ...] = ((1960, 0.92), (1980, 0.70), (2000, 0.30), (2020, 0.10))
VAN_SHARE_BY_BIRTH_YEAR: tuple[tuple[int, float], ...] = ((1960, 0.75), (1980, 0.55), (2000, 0.25), (2020, 0.08))
FEMALE_MIDDLE_NAMES: tuple[tuple[str, float], ...] = (
    ("Ngọc", 10), ("Thu", 7), ("Thanh", 7), ("Bảo", 6), ("Minh", 5), ("Kim", 5), ("Phương", 5),
    ("Thúy", 4), ("Hồng", 4), ("Khánh", 4), ("Thùy", 4), ("Mỹ", 4), ("Mai", 3), ("Hoài", 3),
    ("Quỳnh", 3), ("Diệu", 2), ("Hải", 2), ("Bích", 2), ("Cẩm", 2), ("Xuân", 2), ("Như", 2),
    ("Gia", 2), ("Lan", 2), ("Hà", 2), ("Tuyết", 1), ("Tường", 1), ("An", 1), ("Yến", 1),
    ("Thị Thu", 2), ("Thị Ngọc", 2), ("Thị Kim", 1.5), ("Thị Thanh", 1.5), ("Thị Hồng", 1),
    ("Ngọc Bảo", 1), ("Bảo Ngọc", 1), ("Ngọc Khánh", 0.5),
)
# No "Phúc" for men: "Nguyễn Phúc ..." reads as the royal compound surname (see ids.names.split).
MALE_MIDDLE_NAMES: tuple[tuple[str, float], ...] = (
    ("Minh", 10), ("Đức", 8), ("Quang", 6), ("Hữu", 6), ("Gia", 6), ("Công", 5), ("Thanh", 5),
    ("Hoàng", 5), ("Quốc", 5), ("Đình", 4), ("Duy", 4), ("Bảo", 4), ("Tuấn", 3), ("Anh", 3),
    ("Xuân", 3), ("Ngọc", 3), ("Trọng", 3), ("Mạnh", 3), ("Hải", 3), ("Thành", 3), ("Khánh", 3),
    ("Nhật", 3), ("Đăng", 3), ("Tấn", 3), ("Chí", 3), ("Thế", 3), ("Bá", 2), ("Trung", 2),
    ("Hồng", 2), ("Phước", 2), ("Tiến", 2), ("Việt", 2), ("Kim", 1), ("Văn Minh", 0.5),
)

# Given names: (name, weight for people born before about 1985, weight for those born after).
FEMALE_GIVEN_NAMES: tuple[tuple[str, float, float], ...] = (
    ("Lan", 5, 1), ("Hoa", 5, 1), ("Hương", 6, 3), ("Hằng", 5, 2), ("Hà", 5, 3), ("Mai", 5, 3),
    ("Nga", 4, 1), ("Nhung", 4, 1), ("Thủy", 5, 2), ("Trang", 5, 5), ("Linh", 2, 7), ("Anh", 2, 8),
    ("Ngọc", 2, 4), ("Phương", 3, 3), ("Thảo", 3, 5), ("Huyền", 4, 3), ("Yến", 4, 2), ("Dung", 4, 1),
    ("Hạnh", 4, 1), ("Hiền", 4, 2), ("Loan", 4, 1), ("Oanh", 3, 1), ("Vân", 4, 2), ("Nhi", 1, 6),
    ("Vy", 0.3, 5), ("Châu", 1, 3), ("Ngân", 1, 4), ("Tâm", 3, 1), ("Thu", 3, 1), ("Hồng", 4, 1),
    ("Liên", 4, 1), ("Quyên", 2, 2), ("Trâm", 1, 3), ("Diệp", 0.5, 2), ("Giang", 2, 3), ("Hậu", 3, 1),
    ("Huệ", 3, 0.5), ("Lệ", 3, 0.5), ("Ly", 1, 3), ("My", 1, 4), ("Nhàn", 3, 0.5), ("Phượng", 3, 0.5),
    ("Quỳnh", 2, 4), ("Sương", 2, 0.5), ("Tuyết", 3, 0.5), ("Uyên", 1, 4), ("Xuân", 3, 1),
    ("An", 1, 3), ("Bích", 2, 0.5), ("Cúc", 3, 0.2), ("Đào", 3, 0.2), ("Diễm", 2, 1), ("Duyên", 2, 2),
    ("Tiên", 1, 3), ("Thư", 1, 5), ("Hân", 0.3, 5), ("Vi", 0.3, 3), ("Chi", 0.5, 4), ("Ánh", 2, 2),
    ("Nguyệt", 2, 1), ("Thơm", 3, 0.1), ("Lài", 2, 0.1), ("Nụ", 2, 0.1), ("Thắm", 3, 0.3),
    ("Tươi", 2, 0.2), ("Hạ", 1, 2), ("Khuê", 0.2, 2), ("Như", 1, 4), ("Trinh", 2, 2), ("Ngà", 2, 1),
    ("Kiều", 2, 1), ("Lụa", 1, 0.1), ("Thanh", 2, 1),
)
MALE_GIVEN_NAMES: tuple[tuple[str, float, float], ...] = (
    ("Hùng", 6, 1), ("Dũng", 6, 2), ("Tuấn", 5, 3), ("Nam", 4, 4), ("Minh", 4, 6), ("Long", 4, 4),
    ("Hải", 5, 3), ("Sơn", 5, 2), ("Thắng", 5, 1), ("Cường", 5, 2), ("Hưng", 4, 3), ("Hiếu", 3, 4),
    ("Hoàng", 2, 4), ("Huy", 2, 6), ("Khang", 0.3, 5), ("Khoa", 1, 4), ("Kiên", 2, 3), ("Lâm", 3, 3),
    ("Lộc", 3, 3), ("Nghĩa", 4, 2), ("Phong", 3, 3), ("Phúc", 2, 5), ("Quân", 2, 6), ("Quang", 4, 2),
    ("Tài", 3, 3), ("Tâm", 3, 2), ("Thành", 5, 2), ("Thiện", 2, 2), ("Thịnh", 3, 3), ("Toàn", 4, 2),
    ("Trung", 5, 2), ("Trí", 2, 3), ("Tú", 3, 2), ("Tùng", 4, 3), ("Vinh", 4, 2), ("Việt", 3, 3),
    ("Vũ", 2, 3), ("Bảo", 1, 5), ("Bình", 5, 1), ("Công", 2, 1), ("Đạt", 3, 5), ("Định", 3, 1),
    ("Đông", 3, 1), ("Đức", 5, 3), ("Duy", 2, 4), ("Giang", 2, 2), ("Hà", 3, 1), ("Hậu", 3, 1),
    ("Hiển", 2, 1), ("Hòa", 5, 1), ("Khải", 1, 2), ("Khánh", 3, 4), ("Lợi", 4, 1), ("Luân", 2, 1),
    ("Mạnh", 4, 2), ("Nhân", 3, 3), ("Phát", 2, 4), ("Quốc", 2, 2), ("Sang", 3, 3), ("Tân", 4, 2),
    ("Thái", 3, 2), ("Thông", 3, 2), ("Tiến", 5, 2), ("Trọng", 3, 2), ("Trường", 3, 3),
    ("Chiến", 5, 1), ("Xuân", 3, 0.5), ("Dương", 2, 3), ("Khôi", 0.2, 5), ("An", 1, 3),
    ("Đăng", 0.5, 3), ("Nguyên", 1, 4), ("Tín", 2, 2), ("Danh", 2, 1), ("Hào", 2, 2),
    ("Thuận", 3, 1), ("Tình", 3, 0.5), ("Kiệt", 0.5, 3), ("Lực", 2, 0.5), ("Bằng", 2, 1),
)
# Year of birth from which the "after" weights apply fully (they blend in over the 20 years before).
MODERN_NAMES_FROM = 1995

# ------------------------------------------------------------------------------------ addresses

STREETS: tuple[str, ...] = (
    "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hai Bà Trưng", "Lý Thường Kiệt", "Lê Duẩn",
    "Nguyễn Trãi", "Quang Trung", "Trần Phú", "Phan Chu Trinh", "Phan Bội Châu", "Hùng Vương",
    "Nguyễn Du", "Lê Lai", "Điện Biên Phủ", "Võ Thị Sáu", "Nguyễn Thị Minh Khai",
    "Cách Mạng Tháng Tám", "Lê Thánh Tông", "Ngô Quyền", "Nguyễn Văn Cừ", "Trường Chinh",
    "Lạc Long Quân", "Âu Cơ", "Nguyễn Chí Thanh", "Phạm Văn Đồng", "Võ Nguyên Giáp",
    "Tôn Đức Thắng", "Nguyễn Đình Chiểu", "Lý Tự Trọng", "Bà Triệu", "Trần Quốc Toản",
    "Nguyễn Văn Linh", "Lê Hồng Phong", "Hoàng Văn Thụ", "Nguyễn Thái Học", "Chu Văn An",
    "Lê Quý Đôn", "Phạm Ngũ Lão", "Trần Nhân Tông", "Lý Thái Tổ", "Nguyễn Công Trứ",
    "Nguyễn Khuyến", "Tô Hiến Thành", "Hàm Nghi", "Thống Nhất", "Độc Lập", "Hòa Bình",
    "Nguyễn Văn Trỗi", "Huỳnh Thúc Kháng", "Phan Đình Phùng", "Lê Văn Sỹ", "Nguyễn Trung Trực",
    "Trần Quang Khải", "Hoàng Diệu", "Nguyễn Tất Thành", "Yết Kiêu", "Đinh Tiên Hoàng",
    "Trần Bình Trọng", "Lê Thị Riêng", "Nguyễn An Ninh", "Phan Đăng Lưu", "Xô Viết Nghệ Tĩnh",
)
# Names of villages (thôn, xóm, bản) in the north and centre, and of hamlets (ấp) in the south.
VILLAGE_NAMES: tuple[str, ...] = (
    "Đông", "Đoài", "Thượng", "Hạ", "Trung", "Nam", "Bắc", "Tiền", "Hậu", "Đình", "Chùa", "Cầu",
    "Mới", "Phú Thọ", "An Lạc", "Yên Thái", "Đồng Tâm", "Tân Lập", "Quyết Tiến", "Thắng Lợi",
    "Hòa Bình", "Tiến Bộ", "Liên Hợp", "Đoàn Kết", "Bình Minh", "Phú Mỹ", "Vĩnh An", "Kim Lộc",
)
MOUNTAIN_VILLAGE_NAMES: tuple[str, ...] = (
    "Nà Sản", "Na Hang", "Pác Bó", "Nà Phặc", "Bó Mười", "Huổi Lóng", "Phiêng Luông", "Nậm Cang",
    "Khau Phạ", "Lũng Cú", "Sín Chải", "Tả Phìn", "Cốc Pài", "Mường Hum", "Pá Khoang", "Hua Tạt",
)
HAMLET_NAMES: tuple[str, ...] = (
    "Tân Hòa", "Phú Lợi", "Long Thạnh", "Bình An", "Mỹ Phú", "An Thới", "Tân Thạnh", "Hòa Lợi",
    "Phước Hưng", "Vĩnh Thạnh", "Thạnh Phú", "Long Hưng", "Tân Phú", "Bình Hòa", "Mỹ Lợi",
    "Hưng Thạnh", "An Phú", "Phú Hòa", "Tân Lợi", "Long Bình", "Thới Bình", "Bình Thạnh",
)

# ------------------------------------------------------------------------------- contact details

# Mobile prefixes in use since the 2018 renumbering, by network, with rough market shares.
PHONE_PREFIXES: tuple[tuple[str, float], ...] = (
    # Viettel
    ("086", 4.5), ("096", 6), ("097", 6.5), ("098", 6.5), ("032", 4.5), ("033", 4.5), ("034", 4),
    ("035", 4), ("036", 4), ("037", 4), ("038", 4), ("039", 4),
    # VinaPhone
    ("088", 2.5), ("091", 4.5), ("094", 4), ("081", 2.5), ("082", 2.5), ("083", 2.5), ("084", 2.5),
    ("085", 2.5),
    # MobiFone
    ("089", 2), ("090", 4), ("093", 3.5), ("070", 1.5), ("079", 1.5), ("077", 1.5), ("076", 1.5),
    ("078", 1.5),
    # Vietnamobile, Gmobile, Itelecom
    ("092", 1), ("056", 0.5), ("058", 0.5), ("099", 0.3), ("059", 0.3), ("087", 0.3),
)
EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("gmail.com", 85), ("yahoo.com", 6), ("outlook.com", 4), ("hotmail.com", 3), ("icloud.com", 2),
)

# First digits of the old 9-digit CMND by issuing pre-2025 province, as commonly listed
# (Vietnamese Wikipedia); neighbouring provinces often shared a prefix.
CMND_PREFIXES: dict[str, str] = {
    "001": "01", "002": "07", "004": "08", "006": "095", "008": "07", "010": "06", "011": "04",
    "012": "04", "014": "05", "015": "06", "017": "11", "019": "09", "020": "08", "022": "10",
    "024": "12", "025": "13", "026": "13", "027": "12", "030": "14", "031": "03", "033": "14",
    "034": "15", "035": "16", "036": "16", "037": "16", "038": "17", "040": "18", "042": "18",
    "044": "19", "045": "19", "046": "19", "048": "20", "049": "20", "051": "21", "052": "21",
    "054": "22", "056": "22", "058": "26", "060": "26", "062": "23", "064": "23", "066": "24",
    "067": "24", "068": "25", "070": "285", "072": "29", "074": "280", "075": "27", "077": "27",
    "079": "02", "080": "30", "082": "31", "083": "32", "084": "33", "086": "33", "087": "34",
    "089": "35", "091": "37", "092": "36", "093": "36", "094": "36", "095": "38", "096": "38",
}

# ABO and Rh allele frequencies giving the Vietnamese phenotype shares (O 42%, B 30%, A 21%,
# AB 6%; Rh-negative about 0.1%) under Hardy-Weinberg equilibrium.
ABO_ALLELES: tuple[tuple[str, float], ...] = (("O", 0.648), ("A", 0.1515), ("B", 0.2005))
RH_NEGATIVE_ALLELE = 0.032
BLOOD_TYPE_UNKNOWN = 0.2  # share of people whose blood type the register does not hold
