#include <stddef.h>

#include "cards_data.h"

#define LEN(a) ((int) (sizeof(a) / sizeof((a)[0])))

static const char *const engineer[] = {
	"aeronautical", "agricultural", "automotive", "biomedical",
	"broadcasting (operations)", "building services", "chemical",
	"civil (consulting)", "civil (contracting)", "communications",
	"control and instrumentation", "drilling", "electrical", "electronics",
	"energy", "land", "maintenance", "maintenance (IT)", "manufacturing",
	"manufacturing systems", "materials", "mining", "petroleum", "production",
	"site", "structural", "technical sales", "water", "mechanical",
	"offshore", "software", "network", "acoustic", "marine", "nuclear",
	"geotechnical", "environmental", "traffic", "telecommunications",
	"quality", NULL
};
static const char *const scientist[] = {
	"audiological", "biomedical", "clinical (histocompatibility and immunogenetics)",
	"forensic", "marine", "physiological", "research (life sciences)",
	"research (maths)", "research (medical)", "research (physical sciences)",
	"water quality", "product/process development", "soil", "food",
	"environmental", "data", "atmospheric", "plant", NULL
};
static const char *const teacher[] = {
	"adult education", "early years/pre", "English as a foreign language",
	"further education", "primary school", "secondary school",
	"special educational needs", "music", "art", "drama", "history",
	"mathematics", "science", NULL
};
static const char *const designer[] = {
	"ceramics/pottery", "exhibition/display", "furniture",
	"industrial/product", "interior/spatial", "jewellery", "multimedia",
	"television/film set", "textile", "fashion/clothing",
	"blown glass/stained glass", "graphic", "web", "games", NULL
};
static const char *const surveyor[] = {
	"building", "building control", "commercial/residential", "hydrographic",
	"land/geomatics", "minerals", "mining", "planning and development",
	"quantity", "rural practice", "insurance", NULL
};
static const char *const psychologist[] = {
	"clinical", "counselling", "educational", "forensic", "occupational",
	"prison and probation services", "sport and exercise", "health", NULL
};
static const char *const therapist[] = {
	"art", "drama", "horticultural", "music", "nutritional", "occupational",
	"sports", "speech and language", "physical", NULL
};
static const char *const nurse[] = {
	"adult", "children's", "learning disability", "mental health", "district",
	"community", "theatre", NULL
};
static const char *const doctor[] = {
	"general practice", "hospital", "public health", "paediatric",
	"emergency medicine", NULL
};
static const char *const officer[] = {
	"customs", "immigration", "probation", "prison", "police",
	"environmental health", "housing", "trading standards", "intelligence",
	"fisheries", "tax", "armed forces training", "merchant navy",
	"local government", NULL
};
static const char *const manager[] = {
	"retail", "hotel", "restaurant", "fast food", "estate", "farm",
	"fitness centre", "leisure centre", "IT", "logistics", "production",
	"project", "quality", "risk", "sales", "marketing", "product",
	"purchasing", "records", "regional", "site", "transport", "warehouse",
	"arts", "theatre", "bank branch", "construction", "facilities", "energy",
	"fundraising", "charity", NULL
};
static const char *const administrator[] = {
	"arts", "charities/voluntary organisations", "Civil Service",
	"education", "local government", "sports", "database", "network",
	"hospital", "legal", NULL
};
static const char *const librarian[] = {
	"academic", "public", "school", "law", "medical", NULL
};
static const char *const editor[] = {
	"commissioning", "film/video", "magazine features", "newspaper", "book",
	"copy", "web", NULL
};
static const char *const journalist[] = {
	"broadcast", "magazine", "newspaper", "sports", "online", NULL
};
static const char *const technician[] = {
	"dental", "laboratory", "medical", "veterinary", "theatre", "sound",
	"lighting", "IT support", "museum", "pharmacy", "engineering", NULL
};
static const char *const accountant[] = {
	"chartered", "chartered certified", "chartered management",
	"chartered public finance", "forensic", "management", "tax", NULL
};
static const char *const producer[] = {
	"radio", "television/film/video", "music", "theatre", "events", NULL
};
static const char *const buyer[] = {
	"industrial", "retail", "fashion", "media", NULL
};
static const char *const pharmacist[] = {
	"community", "hospital", "clinical research", "industrial", NULL
};
static const char *const conservator[] = {
	"furniture", "museum/gallery", "objects", "paper", "textile", NULL
};
static const char *const lecturer[] = {
	"further education", "higher education", "university", "nursing",
	"medicine", NULL
};
static const char *const consultant[] = {
	"IT", "management", "energy", "environmental", "tax", "recruitment",
	"healthcare", "acoustic", NULL
};
static const char *const analyst[] = {
	"financial", "systems", "data", "policy", "operations research",
	"market research", "investment", "credit", NULL
};
static const char *const inspector[] = {
	"building", "health and safety", "tax", "school", "food safety",
	"planning", NULL
};
static const char *const operator_[] = {
	"call centre", "plant", "crane", "machine", "radio", "heavy equipment",
	"control room", NULL
};
static const char *const assistant[] = {
	"legal", "teaching", "dental", "veterinary", "research", "personal",
	"editorial", "medical", NULL
};
static const char *const adviser[] = {
	"careers", "financial", "legal", "mortgage", "health and safety",
	"education", "pensions", NULL
};
static const char *const counsellor[] = {
	"careers", "marriage", "student", "addiction", NULL
};
static const char *const clerk[] = {
	"barrister's", "court", "accounts", "shipping", "planning", NULL
};
static const char *const architect[] = {
	"landscape", "naval", "software", "building", "interior", NULL
};
static const char *const planner[] = {
	"town", "transport", "event", "media", "production", NULL
};
static const char *const specialist[] = {
	"IT security", "SEO", "logistics", "payroll", "procurement", NULL
};
static const char *const coordinator[] = {
	"volunteer", "events", "logistics", "research", "clinical trials", NULL
};
static const char *const curator[] = {
	"museum", "art gallery", "archive", NULL
};

const job_group job_groups[] = {
	{"Engineer", engineer}, {"Scientist", scientist}, {"Teacher", teacher},
	{"Designer", designer}, {"Surveyor", surveyor},
	{"Psychologist", psychologist}, {"Therapist", therapist},
	{"Nurse", nurse}, {"Doctor", doctor}, {"Officer", officer},
	{"Manager", manager}, {"Administrator", administrator},
	{"Librarian", librarian}, {"Editor", editor}, {"Journalist", journalist},
	{"Technician", technician}, {"Accountant", accountant},
	{"Producer", producer}, {"Buyer", buyer}, {"Pharmacist", pharmacist},
	{"Conservator", conservator}, {"Lecturer", lecturer},
	{"Consultant", consultant}, {"Analyst", analyst},
	{"Inspector", inspector}, {"Operator", operator_},
	{"Assistant", assistant}, {"Adviser", adviser},
	{"Counsellor", counsellor}, {"Clerk", clerk}, {"Architect", architect},
	{"Planner", planner}, {"Specialist", specialist},
	{"Coordinator", coordinator}, {"Curator", curator},
};
const int	n_job_groups = LEN(job_groups);

const char *const plain_jobs[] = {
	"Accounting technician", "Actor", "Actuary", "Acupuncturist",
	"Advertising account executive", "Aid worker", "Air broker",
	"Air cabin crew", "Air traffic controller", "Airline pilot",
	"Ambulance person", "Animal nutritionist", "Animal technologist",
	"Animator", "Applications developer", "Arboriculturist", "Archaeologist",
	"Archivist", "Armed forces officer", "Astronomer", "Audiologist",
	"Auditor", "Bank clerk", "Banker", "Barista", "Biologist", "Bookseller",
	"Broadcast presenter", "Business analyst", "Camera operator",
	"Cartographer", "Chef", "Chief Executive Officer",
	"Chief Financial Officer", "Chief Marketing Officer",
	"Chief Operating Officer", "Chief Strategy Officer",
	"Chief Technology Officer", "Chiropodist", "Chiropractor",
	"Choreographer", "Civil Service fast streamer", "Claims inspector",
	"Climatologist", "Clinical embryologist", "Clinical research associate",
	"Colour technologist", "Commercial art gallery manager",
	"Commercial horticulturist", "Community arts worker",
	"Community development worker", "Company secretary", "Comptroller",
	"Contractor", "Copywriter", "Corporate treasurer", "Cytogeneticist",
	"Dance movement psychotherapist", "Dancer", "Dentist", "Dietitian",
	"Diplomatic Services operational officer", "Dispensing optician",
	"Ecologist", "Economist", "Education officer", "Electrician",
	"Embryologist", "Engineering geologist",
	"Equality and diversity officer", "Ergonomist", "Estate agent",
	"Exercise physiologist", "Exhibitions officer", "Farmer",
	"Field seismologist", "Financial trader", "Firefighter",
	"Fish farm manager", "Fitness instructor", "Florist", "Forest ranger",
	"Garment technologist", "Gaffer", "Geochemist",
	"Geographical information systems officer", "Geologist", "Geophysicist",
	"Glass blower", "Greenkeeper", "Hairdresser",
	"Health promotion specialist", "Health visitor", "Herbalist",
	"Heritage manager", "Higher education careers adviser", "Homeopath",
	"Horticultural consultant", "Hydrogeologist", "Hydrologist",
	"Illustrator", "Immunologist", "Information officer", "Insurance broker",
	"Insurance claims handler", "Insurance underwriter", "Interpreter",
	"Investment banker", "Lawyer", "Learning mentor", "Lexicographer",
	"Licensed conveyancer", "Lifeguard", "Loss adjuster", "Market researcher",
	"Mechanic", "Media buyer", "Medical illustrator",
	"Medical sales representative", "Metallurgist", "Meteorologist",
	"Microbiologist", "Midwife", "Minister", "Mudlogger",
	"Museum education officer", "Music tutor", "Nature conservation officer",
	"Neurosurgeon", "Occupational hygienist", "Oceanographer", "Optometrist",
	"Orthoptist", "Osteopath", "Paramedic", "Patent attorney", "Pathologist",
	"Personnel officer", "Pharmacologist", "Photographer", "Physiotherapist",
	"Podiatrist", "Politician's assistant", "Presenter, broadcasting",
	"Private music teacher", "Professor Emeritus", "Programmer, multimedia",
	"Programmer, applications", "Proofreader", "Psychiatric nurse",
	"Psychiatrist", "Psychotherapist", "Public affairs consultant",
	"Public house manager", "Publishing copy", "Quarry manager",
	"Radio broadcast assistant", "Regulatory affairs officer",
	"Research officer, trade union", "Restaurant manager, fast food",
	"Retail merchandiser", "Sales executive", "Sales professional, IT",
	"Secretary/administrator", "Seismic interpreter", "Set designer",
	"Ship broker", "Social research officer, government", "Social worker",
	"Sound technician, broadcasting/film/video",
	"Sports development officer", "Statistician", "Stage manager",
	"Sub", "Surgeon", "Systems developer", "Tax adviser",
	"Teaching laboratory technician", "Telecommunications researcher",
	"Television camera operator", "Theme park manager", "Tour manager",
	"Tourism officer", "Tourist information centre manager",
	"Trade mark attorney", "Training and development officer", "Translator",
	"Travel agency manager", "Tree surgeon", "Video editor",
	"Visual merchandiser", "Warden/ranger", "Waste management officer",
	"Web designer", "Wellsite geologist", "Writer", "Youth worker",
	"Veterinary surgeon", "Zookeeper", "Press photographer", "Press sub",
	"Hospital pharmacist", "Landscape architect", "Local government officer",
	"Magazine journalist", "Make", "Multimedia programmer", "Musician",
	"Oncologist", "Operational researcher", "Outdoor activities/education manager",
	"Park ranger", "Police officer", "Product designer", "Product manager",
	"Professor", "Quantity surveyor", "Radiographer, diagnostic",
	"Radiographer, therapeutic", "Research scientist (physical sciences)",
	"Risk analyst", "Sales promotion account executive", "Scientific laboratory technician",
	"Biochemist, clinical", "Chemist, analytical", "Physicist, medical",
	"Geneticist, molecular", "Toxicologist", "Solicitor, Scotland",
	"Barrister", "Solicitor", "Judge", "Magistrate", "Legal executive",
	"Land", "Hotel manager", "Housing manager/officer", "Human resources officer",
	"Immigration officer", "Industrial/product designer", "IT trainer",
	"Jewellery designer", "Leisure centre manager", "Location manager",
	"Logistics and distribution manager", "Make-up artist",
	"Management consultant", "Marketing executive", "Materials scientist",
	"Medical physicist", "Medical secretary", "Merchandiser, retail",
	"Mental health nurse", "Naturopath", "Network engineer",
	"Nutritional therapist", "Occupational therapist", "Office manager",
	"Online marketing manager", "Ophthalmologist", "Optician, dispensing",
	"Orthodontist", "Painter", "Paramedical scientist", "Petroleum engineer",
	"Phytotherapist", "Pilot, airline", "Plant breeder/geneticist",
	"Playwright", "Pottery designer", "Printmaker", "Prison officer",
	"Programme researcher, broadcasting/film/video", "Psychologist",
	"Public relations officer", "Purchasing manager", "Race relations officer",
	"Radio producer", "Records manager", "Recycling officer",
	"Rural practice surveyor", "Science writer", "Sculptor",
	"Senior tax professional/tax inspector", "Special effects artist",
	"Sports administrator", "Sports coach", "Stockbroker", "Structural engineer",
	"Surveyor, land/geomatics", "Systems analyst", "Textile designer",
	"Theatre director", "Town planner", "Trading standards officer",
	"Transport planner", "Tutor", "Veterinary nurse", "Volunteer coordinator",
	"Water engineer", "Wildlife biologist", "Aeronautical engineer",
	"Agricultural consultant", "Amenity horticulturist", "Art therapist",
	"Associate Professor", "Barrister's clerk", "Building control surveyor",
	"Careers information officer", "Child psychotherapist", "Clinical biochemist",
	"Clothing/textile technologist", "Commissioning editor", "Community pharmacist",
	"Conference centre manager", "Contracting civil engineer",
	"Counselling psychologist", "Data scientist", "Drilling engineer",
	"Editorial assistant", "Energy engineer", "Environmental manager",
	"Event organiser", "Exhibition designer", "Film/video editor",
	"Furniture conservator/restorer", "Futures trader", "Health physicist",
	"Historic buildings inspector/conservation officer", "Information systems manager",
};
const int	n_plain_jobs = LEN(plain_jobs);
