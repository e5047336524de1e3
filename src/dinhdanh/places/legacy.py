"""The 63 provinces before the 1 July 2025 reform, and their succession.

The three-digit codes are the ones personal ID numbers carry in positions 1-3 (the statistics
office's two-digit code with a leading zero); they stay in use after the reform.
"""

OLD_PROVINCES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu", "079": "Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang",
    "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long", "087": "Đồng Tháp",
    "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ", "093": "Hậu Giang",
    "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}

# New two-digit province code -> the old codes it was formed from (Resolution 202/2025/QH15), in
# the order of the design table: the first is the old province whose name the new one keeps
# (Thừa Thiên Huế became Huế). The headquarters, and so the new code, is the old province with the
# same number, which is not always the first: Lào Cai 15 <- 010 Lào Cai + 015 Yên Bái (seat in Yên
# Bái), likewise 24, 44, 52, 80, 82, 91.
SUCCESSION: dict[str, tuple[str, ...]] = {
    "01": ("001",), "04": ("004",), "08": ("008", "002"), "11": ("011",), "12": ("012",),
    "14": ("014",), "15": ("010", "015"), "19": ("019", "006"), "20": ("020",), "22": ("022",),
    "24": ("027", "024"), "25": ("025", "026", "017"), "31": ("031", "030"),
    "33": ("033", "034"), "37": ("037", "035", "036"), "38": ("038",), "40": ("040",),
    "42": ("042",), "44": ("045", "044"), "46": ("046",), "48": ("048", "049"),
    "51": ("051", "062"), "52": ("064", "052"), "56": ("056", "058"), "66": ("066", "054"),
    "68": ("068", "067", "060"), "75": ("075", "070"), "79": ("079", "074", "077"),
    "80": ("072", "080"), "82": ("087", "082"), "86": ("086", "083", "084"),
    "91": ("089", "091"), "92": ("092", "093", "094"), "96": ("096", "095"),
}

SUCCESSOR: dict[str, str] = {old: new for new, olds in SUCCESSION.items() for old in olds}
