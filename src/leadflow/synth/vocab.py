"""Vocabularies of the messy-lead generator: sources, names, companies, e-mail patterns, titles and the junk values
real exports carry. Test data, not reference data: plausible values and weights, nothing here is authoritative."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = [
    "COMPANY_EMAIL_PATTERNS", "COMPANY_STEMS", "COMPANY_TLDS", "COMPANY_WORDS", "DATE_FORMATS", "DEFAULT_START",
    "FIRST_NAMES", "FREE_EMAIL_PATTERNS", "FREE_MAIL_DEFAULT", "JUNK_COMPANIES", "JUNK_COUNTRIES", "JUNK_DATES",
    "JUNK_OPT_IN", "JUNK_PHONES", "JUNK_POSTAL", "JUNK_STATES", "JUNK_TITLES", "JUNK_WEBSITES", "LAST_NAMES",
    "LEAD_ID_SHARE", "LEAD_SOURCES", "OPT_IN_VALUES", "PLACEHOLDER_EMAILS", "ROLE_LOCAL_PARTS", "SF_POD", "SOURCES",
    "STATUSES", "TITLES", "TYPO_FREE_DOMAINS", "TZ_OFFSETS", "WEBSITE_FORMS", "Weighted",
]

DEFAULT_START: Final[datetime] = datetime(2026, 11, 1, tzinfo=UTC)
"""Leads are created in the ~90 days before this instant (fixed, so output never depends on the clock)."""

Weighted = tuple[tuple[str, float], ...]

SOURCES: Final[Weighted] = (("salesforce", 0.62), ("marketo", 0.16), ("hubspot", 0.12), ("webform", 0.10))
# Share of rows with a Salesforce lead id, by source: MAP-born leads that never synced to the CRM have none.
LEAD_ID_SHARE: Final[dict[str, float]] = {"salesforce": 1.0, "marketo": 0.85, "hubspot": 0.80, "webform": 0.10}
SF_POD: Final[str] = "5e"

FIRST_NAMES: Final[tuple[str, ...]] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy",
    "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven",
    "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
    "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura", "Edward",
    "Sharon", "Jeffrey", "Cynthia", "Ryan", "Kathleen", "Jacob", "Amy", "Gary", "Angela", "Nicholas", "Shirley",
    "Eric", "Anna", "Jonathan", "Brenda", "Stephen", "Pamela", "Larry", "Emma", "Justin", "Nicole", "Scott", "Helen",
    "Brandon", "Samantha", "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel",
    "Patrick", "Carolyn", "Frank", "Janet", "Raymond", "Catherine", "Jack", "Maria", "Dennis", "Heather", "Jerry",
    "Diane", "Tyler", "Olivia", "Aaron", "Julie", "Jose", "Joyce", "Adam", "Victoria", "Nathan", "Ruth", "Henry",
    "Virginia", "Zachary", "Lauren", "Douglas", "Kelly", "Peter", "Christina", "Kyle", "Joan", "Noah", "Evelyn",
    "Ethan", "Judith", "Jeremy", "Megan", "Walter", "Andrea", "Christian", "Cheryl", "Keith", "Hannah", "Roger",
    "Jacqueline", "Terry", "Martha", "Austin", "Gloria", "Sean", "Teresa", "Gerald", "Ann", "Carl", "Sara", "Harold",
    "Madison", "Dylan", "Frances", "Arthur", "Kathryn", "Lawrence", "Janice", "Jordan", "Jean", "Jesse", "Abigail",
    "Bryan", "Alice", "Billy", "Judy", "Bruce", "Sophia", "Gabriel", "Grace", "Joe", "Denise", "Logan", "Amber",
    "Alan", "Doris", "Juan", "Marilyn", "Albert", "Danielle", "Willie", "Beverly", "Elijah", "Isabella", "Wayne",
    "Theresa", "Randy", "Diana", "Vincent", "Natalie", "Mason", "Brittany", "Roy", "Charlotte", "Ralph", "Marie",
    "Bobby", "Kayla", "Russell", "Alexis", "Bradley", "Lori", "Philip", "Priya", "Rahul", "Aarav", "Ananya", "Wei",
    "Mei", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon", "Mohammed", "Fatima", "Ahmed", "Aisha", "Omar", "Layla", "Lukas",
    "Leon", "Finn", "Mia", "Lena", "Hannes", "Klaus", "Ingrid", "Lars", "Astrid", "Pierre", "Camille", "Louis",
    "Manon", "Giulia", "Marco", "Lucia", "Pablo", "Carmen", "Javier", "Sofia", "Mateus", "Beatriz", "Piotr",
    "Agnieszka", "Kasia", "Aoife", "Niamh", "Sean", "Ciaran", "Mehmet", "Emre", "Elif", "Kwame", "Amara", "Chidi",
    "Anne-Marie", "Jean-Luc", "Hans-Peter", "Mary-Kate", "Jean-Pierre", "Marie-Claire",
    # Non-ASCII names: the share that keeps its spelling in the e-mail local part is the "unicode local part" mess.
    "Jürgen", "José", "Zoë", "Søren", "François", "Björn", "Łukasz", "Ayşe", "Renée", "Chloé", "Siobhán", "Müge",
    "Jörg", "Ramón", "Inés", "Andrés", "Mónica", "Günther", "Håkan", "Désirée",
)
LAST_NAMES: Final[tuple[str, ...]] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox",
    "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz",
    "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
    "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes",
    "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham",
    "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis",
    "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez",
    "Mcdonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker",
    "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw",
    "Snyder", "Mason", "Dixon", "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson",
    "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza", "Daniels",
    "Ferguson", "Nichols", "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley",
    "Spencer", "Hawkins", "Arnold", "Pierce", "Hansen", "Peters", "Santos", "Hart", "Bradley", "Knight", "Elliott",
    "Cunningham", "Duncan", "Armstrong", "Hudson", "Carroll", "Lane", "Riley", "Andrews", "Ray", "Berry", "Perkins",
    "Hoffman", "Johnston", "Matthews", "Pena", "Richards", "Willis", "Carpenter", "Lawrence", "Sandoval", "Wang",
    "Zhang", "Li", "Liu", "Singh", "Kumar", "Sharma", "Gupta", "Tanaka", "Suzuki", "Sato", "Park", "Choi", "Khan",
    "Ali", "Hassan", "Schneider", "Fischer", "Weber", "Becker", "Wolf", "Koch", "Richter", "Klein", "Dubois",
    "Laurent", "Lefebvre", "Moreau", "Rossi", "Russo", "Ferrari", "Esposito", "Kowalski", "Nowak", "Wisniewski",
    "Jansen", "de Vries", "Bakker", "Visser", "Johansson", "Andersson", "Nilsson", "Larsen", "Yilmaz", "Kaya",
    "Okafor", "Mensah", "Oliveira", "Souza", "Pereira", "Byrne", "Walsh", "O'Sullivan",
    # The awkward ones: apostrophes, particles, hyphens, non-ASCII.
    "O'Brien", "O'Connor", "O'Neill", "D'Angelo", "van der Berg", "van Dijk", "van den Heuvel", "de la Cruz",
    "de Jong", "von Braun", "le Roux", "St. John", "Smith-Jones", "Abdul-Rahman", "Garcia-Lopez", "Lloyd-Webber",
    "MacDonald", "McCarthy", "MacLeod", "Müller", "Schröder", "Jäger", "Größer", "García", "Hernández", "Peña",
    "Núñez", "Lefèvre", "Søndergaard", "Åberg", "Wójcik", "Şahin", "Çelik",
)

COMPANY_STEMS: Final[tuple[str, ...]] = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka", "Soylent", "Cyberdyne",
    "Tyrell", "Aperture", "Black Mesa", "Oceanic", "Nakatomi", "Monarch", "Dunder", "Sterling", "Pied Piper",
    "Massive", "Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Proseware", "Wingtip", "Silverline",
    "Redwood", "Bluepeak", "Brightpath", "Clearwater", "Cobalt", "Copperleaf", "Crescent", "Evergreen", "Falcon",
    "Granite", "Harbor", "Horizon", "Ironwood", "Juniper", "Keystone", "Lakeside", "Lumen", "Maple", "Meridian",
    "Nimbus", "Northstar", "Oakridge", "Orion", "Pinnacle", "Quantum", "Riverbend", "Sapphire", "Summit", "Suncrest",
    "Trident", "Vertex", "Westbrook", "Zenith", "Alpine", "Arcadia", "Atlas", "Beacon", "Cascade", "Cedar", "Delta",
    "Echo", "Fjord", "Helix", "Kestrel", "Nordic", "Polaris", "Sequoia", "Blue Heron", "Red Fox", "Tandem", "Ampere",
)
COMPANY_WORDS: Final[tuple[str, ...]] = (
    "Systems", "Analytics", "Labs", "Software", "Technologies", "Solutions", "Logistics", "Consulting", "Capital",
    "Health", "Media", "Robotics", "Energy", "Foods", "Manufacturing", "Partners", "Networks", "Digital", "Data",
    "Cloud", "Security", "Bio", "Pharma", "Retail", "Insurance", "Motors", "Telecom", "Industries", "Holdings",
    "Group", "Ventures", "Studios", "Design", "Engineering", "Marine", "Aerospace", "Payments", "Learning", "Markets",
    "Dynamics", "Interactive", "Devices", "Materials", "Foundry", "Works", "Trading", "Properties", "Finance", "AI",
    "Apparel",
)
# Cycled over company indexes, so one company always has one domain: mostly .com, as in real B2B data.
COMPANY_TLDS: Final[tuple[str, ...]] = (
    ".com", ".com", ".com", ".io", ".com", ".com", ".net", ".com", ".co", ".com", ".ai", ".com", ".de", ".com",
    ".co.uk", ".com", ".io", ".com", ".eu", ".com", ".com",
)
# Local-part conventions; each company uses one (cycled like the TLD), as real mail servers do.
COMPANY_EMAIL_PATTERNS: Final[tuple[tuple[str, float], ...]] = (
    ("first.last", 55), ("flast", 18), ("f.last", 10), ("first_last", 5), ("firstl", 4), ("firstlast", 3),
    ("last.first", 2), ("first", 3),
)
FREE_EMAIL_PATTERNS: Final[Weighted] = (
    ("first.last", 8), ("first.last##", 22), ("firstlast####", 18), ("first_last##", 12), ("flast###", 15),
    ("firstlast##", 15), ("last.first###", 10),
)
FREE_MAIL_DEFAULT: Final[Weighted] = (
    ("gmail.com", 60), ("yahoo.com", 10), ("outlook.com", 14), ("hotmail.com", 10), ("icloud.com", 5),
    ("protonmail.com", 1),
)
ROLE_LOCAL_PARTS: Final[tuple[str, ...]] = (
    "info", "sales", "contact", "admin", "marketing", "hello", "office", "team", "support", "billing", "hr",
)
PLACEHOLDER_EMAILS: Final[tuple[str, ...]] = (
    "n/a", "test@test", "none", "-", "asdf@asdf", "noemail", "no@email", "test@test.com", "x", "N/A", "abc@xyz",
    "unknown@unknown", "na@na.com",
)
TYPO_FREE_DOMAINS: Final[tuple[str, ...]] = (
    "gmial.com", "gmail.con", "gmai.com", "gnail.com", "gmail.co", "yahooo.com", "yaho.co.uk", "hotmial.com",
    "outlok.com", "hotmail.cmo",
)

TITLES: Final[Weighted] = (
    ("CEO", 3), ("Chief Executive Officer", 1), ("Chief Revenue Officer", 1), ("CRO", 0.5), ("CFO", 1),
    ("CTO", 1.5), ("CMO", 1), ("COO", 0.8), ("Chief Information Officer", 0.5), ("Founder", 2), ("Co-Founder", 1.5),
    ("Founder & CEO", 1), ("Owner", 1.5), ("President", 1), ("Managing Director", 1.5), ("Geschäftsführer", 0.8),
    ("SVP Sales", 1), ("SVP, Marketing", 0.5), ("VP Sales", 2), ("VP of Marketing", 2), ("VP, People", 0.6),
    ("VP Engineering", 1.5), ("Vice President, Finance", 0.8), ("AVP Sales", 0.4), ("EVP", 0.3),
    ("Head of Marketing", 2), ("Head of Sales", 2), ("Head of Growth", 1), ("Head of IT", 1),
    ("Head of Revenue Operations", 1), ("Director of Sales", 2), ("Director, Demand Generation", 1.5),
    ("Dir. of Finance", 0.8), ("IT Director", 1.5), ("Director of Engineering", 1.2), ("HR Director", 1),
    ("Sales Director", 1.5), ("Marketing Manager", 4), ("Sales Manager", 3), ("IT Manager", 3),
    ("Engineering Manager", 2), ("Product Manager", 3), ("Office Manager", 1.5), ("Operations Manager", 2),
    ("Finance Manager", 1.5), ("HR Manager", 1.5), ("Mgr, IT Ops", 0.5), ("Sr Mgr Marketing", 0.5),
    ("Sr. Software Engineer", 3), ("Software Engineer", 4), ("Senior Data Analyst", 2), ("Data Scientist", 2),
    ("DevOps Engineer", 1.5), ("Systems Administrator", 1.5), ("Account Executive", 4),
    ("Senior Account Executive", 2), ("SDR", 1.5), ("Sales Development Representative", 2), ("BDR", 1),
    ("Account Manager", 3), ("Customer Success Manager", 2), ("Marketing Ops Specialist", 2),
    ("Marketing Operations Manager", 1.5), ("Marketing Coordinator", 2), ("Content Marketing Manager", 1.5),
    ("Demand Gen Manager", 1.5), ("RevOps Analyst", 1), ("Sales Operations Analyst", 1.5), ("Financial Analyst", 1.5),
    ("Accountant", 1.5), ("Controller", 1), ("Recruiter", 1.5), ("Talent Acquisition Partner", 1),
    ("Consultant", 2.5), ("Senior Consultant", 1.5), ("Analyst", 2), ("Project Manager", 2.5),
    ("Administrative Assistant", 1.5), ("Executive Assistant", 1), ("Partner", 0.6), ("Principal", 0.5),
    ("intern", 1), ("Marketing Intern", 0.8), ("student", 1.5), ("Teacher", 0.3), ("Retired", 0.3), ("Other", 0.5),
)
JUNK_TITLES: Final[tuple[str, ...]] = ("-", "-", "-", "n/a", ".", "x", "asdf", "?")

LEAD_SOURCES: Final[Weighted] = (
    ("Web Form", 22), ("Webinar", 12), ("Demo Request", 12), ("Trade Show", 8), ("Paid Search", 12),
    ("Referral", 6), ("Content Download", 14), ("Partner", 5), ("web form", 1), ("Paid search", 0.5),
    ("Tradeshow", 0.5),
)
OPT_IN_VALUES: Final[Weighted] = (
    ("true", 20), ("false", 14), ("yes", 8), ("no", 6), ("1", 10), ("0", 8), ("Y", 4), ("N", 3), ("TRUE", 4),
    ("FALSE", 2), ("True", 2), ("Yes", 1), ("No", 1),
)
JUNK_OPT_IN: Final[tuple[str, ...]] = ("maybe", "pending", "unsure", "?", "opt-in pending", "2")
STATUSES: Final[Weighted] = (
    ("Open - Not Contacted", 40), ("Working - Contacted", 25), ("Nurture", 12), ("Closed - Not Converted", 10),
    ("Closed - Converted", 5),
)
JUNK_DATES: Final[tuple[str, ...]] = (
    "yesterday", "0000-00-00", "N/A", "31/31/2026", "TBD", "00/00/0000", "not a date", "2026-13-45", "asap",
)
TZ_OFFSETS: Final[tuple[tuple[str, int], ...]] = (
    ("+02:00", 7200), ("+01:00", 3600), ("-05:00", -18000), ("-04:00", -14400), ("-08:00", -28800),
    ("-07:00", -25200), ("+05:30", 19800), ("+09:00", 32400), ("+10:00", 36000), ("+00:00", 0),
)
# created_at/updated_at renderings: iso Z, iso offset, iso millis, "YYYY-MM-DD HH:MM:SS", "MM/DD/YYYY",
# "MM/DD/YYYY HH:MM", epoch seconds.
DATE_FORMATS: Final[tuple[float, ...]] = (0.46, 0.15, 0.06, 0.15, 0.06, 0.03, 0.09)

JUNK_COUNTRIES: Final[tuple[str, ...]] = (
    "Select", "-- Select --", "N/A", "unknown", "-", "none", "12345", "Other", "n/a", "Please select", "?", "xx",
)
JUNK_STATES: Final[tuple[str, ...]] = ("--", "N/A", "Select State", "XX", "-", "none", "00")
JUNK_PHONES: Final[tuple[str, ...]] = (
    "n/a", "000", "123", "tel:", "N/A", "0", "none", "-", "1234567", "+1", "0000000000", "x", "???", "call me",
)
JUNK_POSTAL: Final[tuple[str, ...]] = ("00000", "n/a", "-", "0", "none", "xxxxx")
JUNK_WEBSITES: Final[tuple[str, ...]] = ("n/a", "none", "-", "http://", "www.", "localhost", "test", "N/A", ".")
JUNK_COMPANIES: Final[tuple[str, ...]] = ("n/a", "-", "self", "none", "Freelance", "Self-employed", "N/A", "x", "?")
WEBSITE_FORMS: Final[Weighted] = (
    ("https://www.{}", 25), ("http://www.{}", 8), ("www.{}", 20), ("{}", 20), ("https://{}", 12),
    ("https://www.{}/", 5), ("https://{}/contact", 2), ("http://{}/en/home.html", 1), ("www.{}/", 2),
    ("HTTPS://WWW.{}", 1),
)
