/*
 * Vocabularies of the retail generator (see retail_data.h).  Country and
 * month figures are those of the UCI Online Retail file.
 */
#include "retail_data.h"

const retail_country retail_countries[N_RETAIL_COUNTRIES] = {
	{"United Kingdom", 495478}, {"Germany", 9495}, {"France", 8557}, {"EIRE", 8196},
	{"Spain", 2533}, {"Netherlands", 2371}, {"Belgium", 2069}, {"Switzerland", 2002},
	{"Portugal", 1519}, {"Australia", 1259}, {"Norway", 1086}, {"Italy", 803},
	{"Channel Islands", 758}, {"Finland", 695}, {"Cyprus", 622}, {"Sweden", 462},
	{"Unspecified", 446}, {"Austria", 401}, {"Denmark", 389}, {"Japan", 358},
	{"Poland", 341}, {"Israel", 297}, {"USA", 291}, {"Hong Kong", 288},
	{"Singapore", 229}, {"Iceland", 182}, {"Canada", 151}, {"Greece", 146},
	{"Malta", 127}, {"United Arab Emirates", 68}, {"European Community", 61},
	{"RSA", 58}, {"Lebanon", 45}, {"Lithuania", 35}, {"Brazil", 32},
	{"Czech Republic", 30}, {"Bahrain", 19}, {"Saudi Arabia", 10},
};

const special_code special_codes[N_SPECIAL_CODES] = {
	{"POST", "POSTAGE", 0.00225, 0.0130, 18000, 40000, 1000},
	{"DOT", "DOTCOM POSTAGE", 0.00131, 0, 100000, 1500000, 10},
	{"M", "Manual", 0.00080, 0.0190, 500, 300000, 10},
	{"m", "Manual", 0.000002, 0, 2550, 2550, 1},
	{"C2", "CARRIAGE", 0.00026, 0.0004, 50000, 50000, 1},
	{"D", "Discount", 0, 0.0083, 5000, 150000, 10},
	{"S", "SAMPLES", 0, 0.0066, 1000, 80000, 10},
	{"BANK CHARGES", "Bank Charges", 0.00006, 0.0013, 15000, 15000, 1},
	{"AMAZONFEE", "AMAZON FEE", 0, 0.0032, 1000000, 15000000, 10},
	{"CRUK", "CRUK Commission", 0, 0.0017, 1000, 1000000, 10},
	{"B", "Adjust bad debt", 0, 0, 0, 0, 1},
	{"PADS", "PADS TO MATCH ALL CUSHIONS", 0.000007, 0, 1, 1, 1},
	{"DCGS0076", "SUNJAR LED NIGHT NIGHT LIGHT", 0.00001, 0, 16630, 16630, 1},
	{"DCGS0003", "BOXED GLASS ASHTRAY", 0.00001, 0, 2460, 2460, 1},
	{"DCGSSBOY", "BOYS PARTY BAG", 0.00002, 0, 3290, 3290, 1},
	{"gift_0001_10", "Dotcomgiftshop Gift Voucher \xc2\xa3" "10.00", 0.00001, 0, 8510, 8510, 1},
	{"gift_0001_20", "Dotcomgiftshop Gift Voucher \xc2\xa3" "20.00", 0.00002, 0, 17020, 17020, 1},
	{"gift_0001_30", "Dotcomgiftshop Gift Voucher \xc2\xa3" "30.00", 0.00001, 0, 25530, 25530, 1},
	{"gift_0001_40", "Dotcomgiftshop Gift Voucher \xc2\xa3" "40.00", 0.00001, 0, 34040, 34040, 1},
	{"gift_0001_50", "Dotcomgiftshop Gift Voucher \xc2\xa3" "50.00", 0.00001, 0, 42550, 42550, 1},
};

const double retail_month_rows[13] = {
	42481, 35147, 27707, 36748, 29916, 37030, 36874, 39518, 35284, 50226, 60742, 84711, 25525,
};

/* the median line price is 2.08 */
const int64_t price_points[N_PRICE_POINTS] = {
	190, 290, 390, 420, 550, 650, 720, 830, 850, 1250,
	1450, 1650, 1950, 2080, 2100, 2460, 2550, 2950, 3250, 3750,
	4250, 4950, 5950, 6750, 7950, 8500, 9950, 12750, 14950, 24950,
};
const double price_weights[N_PRICE_POINTS] = {
	1, 3, 3, 8, 4, 6, 2, 7, 5, 9,
	5, 9, 5, 2, 6, 4, 6, 7, 4, 6,
	5, 6, 3, 2, 3, 1, 2, 1, 1, 0.5,
};

const char *const desc_colours[] = {
	"WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "BLACK", "CREAM", "SILVER",
	"GOLD", "PURPLE", "ORANGE", "YELLOW", "ANTIQUE", "VINTAGE", "RETRO", "REGENCY",
	"JUMBO", "SMALL", "LARGE", "SET OF 3", "SET OF 6", "PACK OF 12", "HANGING",
	"FELTCRAFT", "SWEETHEART", "ROSE", "FRENCH", "EDWARDIAN", "GLASS", "WOODEN",
};
const int	n_desc_colours = sizeof(desc_colours) / sizeof(desc_colours[0]);

const char *const desc_motifs[] = {
	"HEART", "RETROSPOT", "POLKADOT", "SPACEBOY", "DOLLY GIRL", "PAISLEY", "SKULL",
	"STRAWBERRY", "BIRD", "FLOWER", "STAR", "CHRISTMAS", "BUNTING", "LOVE",
	"APPLE", "CUPID", "LANTERN", "OWL", "BUTTERFLY", "SPOTTY", "SKULLS",
	"WOODLAND", "VICTORIAN", "BAROQUE", "GINGHAM", "ENGLISH ROSE", "PANTRY",
};
const int	n_desc_motifs = sizeof(desc_motifs) / sizeof(desc_motifs[0]);

const char *const desc_items[] = {
	"T-LIGHT HOLDER", "LANTERN", "COAT HANGER", "HOT WATER BOTTLE", "CAKESTAND",
	"LUNCH BAG", "JUMBO BAG", "PARTY BUNTING", "ALARM CLOCK", "TEA CUP AND SAUCER",
	"NAPKINS", "PAPER PLATES", "CAKE CASES", "DOORMAT", "CUSHION COVER", "PURSE",
	"MUG", "WALL ART", "PHOTO FRAME", "CANDLE", "BISCUIT TIN", "STORAGE JAR",
	"CHILDRENS APRON", "SHOPPER BAG", "WRAP", "GIFT BAG", "NOTEBOOK", "BAKING SET",
	"HAND WARMER", "WATER BOTTLE", "CLOCK", "DRAWER KNOB", "SIGN", "TRINKET BOX",
	"PEG BAG", "OVEN GLOVE", "SPONGE", "GARLAND", "ORNAMENT", "CHALKBOARD",
};
const int	n_desc_items = sizeof(desc_items) / sizeof(desc_items[0]);
