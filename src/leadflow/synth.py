"""Deterministic generator of realistic, messy synthetic B2B leads (for the demo, tests and benchmarks).

The bundled sample was created, from the repository root, with::

    python -m leadflow.synth --rows 2500 --seed 7 --out src/leadflow/data/sample_leads.csv

`messy_leads(n, seed)` returns the columns of `leadflow.schema.CORE_INPUT_COLUMNS` (no firmographics), all dtype "string" with pd.NA for
missing. Most rows are reasonably clean; the rest carry the mess real CRM/MAP exports carry: country spellings and
placeholders, broken or duplicated e-mails, phone numbers in every national format, mixed date formats, free-text
booleans, and a tiny share of rows that must be refused (no lead_id and no e-mail) or quarantined (opt-in "maybe",
junk dates). Output depends only on (n, seed, start): never on the clock. Placeholders such as "N/A" are values,
not missing: read the CSV with `keep_default_na=False, na_values=[""]` to get back exactly what was generated.

Approximate shares (of all rows): no lead_id 14%; neither lead_id nor e-mail 0.3%; e-mail missing 5%, broken
(no "@", "@@", spaces, placeholders, "mailto:", "Name <addr>") 2.5%, typo domain 0.7%, duplicate of another row's
address ~3%; country missing 5%, placeholder ("Select", "N/A", "12345") 1.5%; phone missing 12%, junk 2.5%;
opt-in unrecognised ("maybe", "pending") 0.2%; junk created_at/updated_at 0.3% each; owner_id set 40%.
The vocabularies below are test data, not reference data.

Everything is vectorised (numpy StringDType, and integer indexes into pools turned into strings by Arrow):
1,000,000 rows take about 6 s of CPU.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadflow.schema import CORE_INPUT_COLUMNS

__all__ = ["DEFAULT_START", "messy_leads", "main"]

DEFAULT_START: Final[datetime] = datetime(2026, 11, 1, tzinfo=UTC)
"""Leads are created in the ~90 days before this instant (fixed, so output never depends on the clock)."""

_SD: Final = np.dtypes.StringDType()
Weighted = tuple[tuple[str, float], ...]

# ---------------------------------------------------------------------------------------------------------------
# Vocabularies. Test data, not reference data: plausible values and weights, nothing here is authoritative.
# ---------------------------------------------------------------------------------------------------------------

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


@dataclass(frozen=True, slots=True)
class City:
    """A city: spellings (first = usual), postal-code templates, state (code, name), NANP area codes."""

    names: tuple[str, ...]
    postal: tuple[str, ...] = ()
    state: tuple[str, str] = ("", "")
    areas: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Country:
    """How leads of one country look: country spellings, cities, phone formats, legal suffixes, free-mail."""

    iso2: str
    weight: float
    spellings: Weighted
    cities: tuple[City, ...]
    phones: Weighted
    suffixes: Weighted
    free_mail: Weighted = FREE_MAIL_DEFAULT
    region_share: float = 0.0  # share of rows filling `state` for countries without US-style states


# Templates: "#" any digit, "^" a digit 2-9, "?" a letter valid in UK/CA postcodes, "{A}" the city's area code.
_NANP_PHONES: Final[Weighted] = (
    ("({A}) ^##-####", 30), ("{A}-^##-####", 20), ("{A}.^##.####", 10), ("+1 {A} ^## ####", 15),
    ("+1 ({A}) ^##-####", 8), ("+1 {A} ^## #### x###", 3), ("{A}-^##-#### ext. ##", 2), ("{A}^######", 7),
    ("1-{A}-^##-####", 5), ("+1{A}^######", 5),
)
_US_SUFFIXES: Final[Weighted] = (
    ("Inc.", 35), ("Inc", 10), ("LLC", 15), ("Corp.", 8), ("Corporation", 5), (", Inc.", 10), ("Co.", 2),
)

COUNTRIES: Final[tuple[Country, ...]] = (
    Country(
        "US", 42,
        (("United States", 40), ("USA", 20), ("US", 8), ("us", 3), ("U.S.A.", 3), ("U.S.", 3),
         ("United States of America", 8), ("usa", 3), ("America", 1), ("united states", 3), ("USA.", 1)),
        (
            City(("San Francisco", "SF", "San Fransisco"), ("941##",), ("CA", "California"), ("415", "628"), 3),
            City(("New York", "New York City", "NYC"), ("100##", "101##"), ("NY", "New York"),
                 ("212", "646", "917", "718"), 4),
            City(("Austin",), ("787##",), ("TX", "Texas"), ("512", "737"), 2),
            City(("Chicago",), ("606##",), ("IL", "Illinois"), ("312", "773"), 3),
            City(("Boston",), ("021##",), ("MA", "Massachusetts"), ("617", "857"), 2),
            City(("Seattle",), ("981##",), ("WA", "Washington"), ("206",), 2),
            City(("Denver",), ("802##",), ("CO", "Colorado"), ("303", "720")),
            City(("Atlanta",), ("303##",), ("GA", "Georgia"), ("404", "678"), 1.5),
            City(("Miami",), ("331##",), ("FL", "Florida"), ("305", "786")),
            City(("Los Angeles", "LA"), ("900##",), ("CA", "California"), ("213", "310", "323"), 3),
            City(("Dallas",), ("752##",), ("TX", "Texas"), ("214", "469", "972"), 2),
            City(("Phoenix",), ("850##",), ("AZ", "Arizona"), ("602", "480")),
            City(("Raleigh",), ("276##",), ("NC", "North Carolina"), ("919", "984")),
            City(("Minneapolis",), ("554##",), ("MN", "Minnesota"), ("612",)),
            City(("Salt Lake City",), ("841##",), ("UT", "Utah"), ("801", "385")),
            City(("Pittsburgh",), ("152##",), ("PA", "Pennsylvania"), ("412",)),
            City(("Nashville",), ("372##",), ("TN", "Tennessee"), ("615",)),
            City(("Portland",), ("972##",), ("OR", "Oregon"), ("503", "971")),
            City(("San Diego",), ("921##",), ("CA", "California"), ("619", "858")),
            City(("Washington", "Washington DC"), ("200##",), ("DC", "District of Columbia"), ("202",)),
        ),
        _NANP_PHONES, _US_SUFFIXES,
    ),
    Country(
        "GB", 11,
        (("United Kingdom", 35), ("UK", 25), ("U.K.", 5), ("England", 12), ("Scotland", 4), ("Wales", 2),
         ("Great Britain", 5), ("GB", 4), ("uk", 3), ("Northern Ireland", 1), ("Britain", 1)),
        (
            City(("London",), ("EC2A #??", "SW1A #??", "W1D #??", "N1 #??", "E14 #??", "SE1 #??"),
                 ("", "Greater London"), weight=5),
            City(("Manchester",), ("M1 #??", "M3 #??"), ("", "Greater Manchester"), weight=1.5),
            City(("Birmingham",), ("B1 #??",), ("", "West Midlands")),
            City(("Leeds",), ("LS1 #??",), ("", "West Yorkshire")),
            City(("Glasgow",), ("G2 #??",), ("", "Scotland")),
            City(("Edinburgh",), ("EH1 #??", "EH3 #??"), ("", "Scotland")),
            City(("Bristol",), ("BS1 #??",), ("", "Bristol")),
            City(("Cambridge",), ("CB2 #??",), ("", "Cambridgeshire"), weight=0.7),
        ),
        (("+44 20 7### ####", 12), ("020 7### ####", 12), ("+44 (0)20 3### ####", 5), ("020 8### ####", 6),
         ("+44 161 ^## ####", 6), ("0161 ^## ####", 5), ("+44 121 4## ####", 3), ("0113 2## ####", 3),
         ("+44 78## ######", 3), ("+44 77## ######", 7), ("079## ######", 8), ("0044 20 7### ####", 3),
         ("+4420 7### ####", 2)),
        (("Ltd", 40), ("Ltd.", 20), ("Limited", 20), ("PLC", 5), ("LLP", 3)),
        (("gmail.com", 45), ("yahoo.co.uk", 15), ("hotmail.co.uk", 15), ("outlook.com", 10), ("btinternet.com", 8),
         ("icloud.com", 5)),
        region_share=0.12,
    ),
    Country(
        "DE", 9,
        (("Germany", 50), ("Deutschland", 20), ("DE", 10), ("DEU", 4), ("germany", 5), ("GERMANY", 3),
         ("Federal Republic of Germany", 1)),
        (
            City(("Berlin",), ("10###", "12###"), ("BE", "Berlin"), weight=3),
            City(("München", "Munich", "Muenchen"), ("80###", "81###"), ("BY", "Bayern"), weight=2.5),
            City(("Hamburg",), ("20###", "22###"), ("HH", "Hamburg"), weight=2),
            City(("Frankfurt am Main", "Frankfurt"), ("60###",), ("HE", "Hessen")),
            City(("Köln", "Cologne", "Koeln"), ("50###", "51###"), ("NW", "Nordrhein-Westfalen")),
            City(("Stuttgart",), ("70###",), ("BW", "Baden-Württemberg")),
            City(("Düsseldorf", "Duesseldorf"), ("40###",), ("NW", "Nordrhein-Westfalen")),
        ),
        (("+49 30 ########", 15), ("0049 30 ########", 5), ("030 #######", 10), ("030 ########", 8),
         ("+49 89 #######", 8), ("089 ########", 5), ("+49 40 ########", 5), ("+49 (0)69 #######", 4),
         ("+49 151 ########", 8), ("0151 ########", 6), ("0170 #######", 5), ("+49 171 #######", 4),
         ("+49-221-#######", 3), ("0711 ########", 3)),
        (("GmbH", 70), ("AG", 15), ("GmbH & Co. KG", 10), ("SE", 2), ("UG", 3)),
        (("gmail.com", 30), ("gmx.de", 25), ("web.de", 25), ("t-online.de", 10), ("yahoo.de", 5),
         ("outlook.de", 5)),
        region_share=0.15,
    ),
    Country(
        "CA", 5, (("Canada", 80), ("CA", 8), ("CAN", 4), ("canada", 5), ("Canada.", 1)),
        (
            City(("Toronto",), ("M5V #?#", "M4W #?#"), ("ON", "Ontario"), ("416", "647", "437"), 3),
            City(("Vancouver",), ("V6B #?#",), ("BC", "British Columbia"), ("604", "778"), 2),
            City(("Montréal", "Montreal"), ("H2X #?#", "H3B #?#"), ("QC", "Québec"), ("514", "438"), 2),
            City(("Calgary",), ("T2P #?#",), ("AB", "Alberta"), ("403", "587")),
            City(("Ottawa",), ("K1P #?#",), ("ON", "Ontario"), ("613", "343")),
        ),
        _NANP_PHONES, (("Inc.", 60), ("Ltd.", 30), ("Corp.", 10)),
    ),
    Country(
        "AU", 4, (("Australia", 80), ("AU", 8), ("AUS", 5), ("australia", 4)),
        (
            City(("Sydney",), ("20##",), ("NSW", "New South Wales"), weight=3),
            City(("Melbourne",), ("30##",), ("VIC", "Victoria"), weight=3),
            City(("Brisbane",), ("40##",), ("QLD", "Queensland"), weight=1.5),
            City(("Perth",), ("60##",), ("WA", "Western Australia")),
            City(("Adelaide",), ("50##",), ("SA", "South Australia")),
        ),
        (("+61 2 9### ####", 15), ("(02) 9### ####", 10), ("+61 3 9### ####", 12), ("03 9### ####", 8),
         ("04## ### ###", 12), ("+61 4## ### ###", 10), ("+61 7 3### ####", 5), ("+61 (0)8 9### ####", 3)),
        (("Pty Ltd", 90), ("Ltd", 10)),
    ),
    Country(
        "FR", 3.5, (("France", 80), ("FR", 10), ("france", 5), ("République française", 1)),
        (
            City(("Paris",), ("750##",), weight=4), City(("Lyon",), ("6900#",)),
            City(("Marseille",), ("130##",)), City(("Toulouse",), ("310##",)),
        ),
        (("+33 1 ## ## ## ##", 20), ("01 ## ## ## ##", 20), ("06 ## ## ## ##", 15), ("+33 6 ## ## ## ##", 12),
         ("+33 (0)1 ## ## ## ##", 5), ("07 6# ## ## ##", 5), ("+33 4 ## ## ## ##", 5)),
        (("SAS", 50), ("S.A.", 25), ("SARL", 20)),
        (("gmail.com", 40), ("orange.fr", 20), ("free.fr", 15), ("hotmail.fr", 10), ("yahoo.fr", 10),
         ("wanadoo.fr", 5)),
        region_share=0.05,
    ),
    Country(
        "NL", 3,
        (("Netherlands", 50), ("The Netherlands", 15), ("Nederland", 12), ("Holland", 10), ("NL", 8)),
        (City(("Amsterdam",), ("10## ??",), weight=3), City(("Rotterdam",), ("30## ??",)),
         City(("Utrecht",), ("35## ??",))),
        (("+31 20 ^## ####", 20), ("020-^######", 15), ("06-1#######", 15), ("+31 6 2#######", 15),
         ("+31 (0)10 ^## ####", 5)),
        (("B.V.", 80), ("N.V.", 20)),
    ),
    Country(
        "ES", 2, (("Spain", 60), ("España", 25), ("Espana", 5), ("ES", 8)),
        (City(("Madrid",), ("280##",), weight=3), City(("Barcelona",), ("080##",), weight=2),
         City(("Valencia",), ("460##",))),
        (("+34 91 ### ## ##", 20), ("91 ### ## ##", 15), ("+34 6## ### ###", 15), ("93 ### ## ##", 10),
         ("+34 93 ### ## ##", 10)),
        (("S.L.", 60), ("S.A.", 40)),
        region_share=0.1,
    ),
    Country(
        "IE", 1.5, (("Ireland", 70), ("Éire", 5), ("Republic of Ireland", 10), ("IE", 5), ("Eire", 2)),
        (City(("Dublin",), ("D02 ?#?#", "D04 ?#?#"), weight=4), City(("Cork",), ("T12 ?#?#",))),
        (("+353 1 ^## ####", 25), ("01 ^## ####", 15), ("+353 87 ### ####", 15), ("086 ### ####", 10)),
        (("Ltd", 60), ("Limited", 20), ("DAC", 10)),
    ),
    Country(
        "AT", 1.2, (("Austria", 60), ("Österreich", 25), ("AT", 8), ("Osterreich", 3)),
        (City(("Wien", "Vienna"), ("10#0",), weight=3), City(("Graz",), ("80#0",)), City(("Salzburg",), ("50#0",))),
        (("+43 1 ^######", 25), ("+43 664 #######", 15), ("0664 #######", 10), ("01 5######", 10)),
        (("GmbH", 80), ("AG", 20)),
        (("gmail.com", 40), ("gmx.at", 30), ("aon.at", 15), ("outlook.com", 15)),
    ),
    Country(
        "CH", 1.5, (("Switzerland", 60), ("Schweiz", 15), ("Suisse", 10), ("CH", 10), ("Svizzera", 3)),
        (City(("Zürich", "Zurich", "Zuerich"), ("80##",), weight=3), City(("Genève", "Geneva", "Genf"), ("12##",)),
         City(("Basel",), ("40##",))),
        (("+41 44 ^## ## ##", 25), ("044 ^## ## ##", 15), ("+41 79 ### ## ##", 15), ("+41 22 ^## ## ##", 10)),
        (("AG", 60), ("GmbH", 30), ("SA", 10)),
        (("gmail.com", 40), ("bluewin.ch", 30), ("gmx.ch", 15), ("outlook.com", 15)),
    ),
    Country(
        "SE", 1.2, (("Sweden", 70), ("Sverige", 20), ("SE", 8)),
        (City(("Stockholm",), ("1## ##",), weight=3), City(("Göteborg", "Gothenburg"), ("4## ##",))),
        (("+46 8 ### ### ##", 25), ("08-### ### ##", 15), ("+46 70 ### ## ##", 20)),
        (("AB", 100),),
    ),
    Country(
        "PL", 1, (("Poland", 70), ("Polska", 25), ("PL", 5)),
        (City(("Warszawa", "Warsaw"), ("0#-###",), weight=3), City(("Kraków", "Krakow", "Cracow"), ("3#-###",))),
        (("+48 22 ### ## ##", 30), ("+48 60# ### ###", 20), ("+48 50# ### ###", 15)),
        (("Sp. z o.o.", 80), ("S.A.", 20)),
    ),
    Country(
        "BR", 1.5, (("Brazil", 60), ("Brasil", 35), ("BR", 5)),
        (City(("São Paulo", "Sao Paulo"), ("0####-###",), weight=3), City(("Rio de Janeiro",), ("2####-###",))),
        (("+55 11 9####-####", 30), ("(11) 9####-####", 20), ("+55 21 3###-####", 10), ("+55 11 3###-####", 10)),
        (("Ltda.", 70), ("S.A.", 30)),
    ),
    Country(
        "MX", 1, (("Mexico", 60), ("México", 30), ("MX", 8)),
        (City(("Ciudad de México", "Mexico City", "CDMX"), ("0##00",), weight=3), City(("Monterrey",), ("64###",)),
         City(("Guadalajara",), ("44###",))),
        (("+52 55 #### ####", 40), ("55 #### ####", 20), ("+52 81 #### ####", 10)),
        (("S.A. de C.V.", 80), ("S. de R.L.", 20)),
    ),
    Country(
        "TR", 0.6, (("Turkey", 50), ("Türkiye", 35), ("Turkiye", 10), ("TR", 5)),
        (City(("İstanbul", "Istanbul"), ("34###",), weight=3), City(("Ankara",), ("06###",))),
        (("+90 212 ^## ## ##", 30), ("+90 53# ### ## ##", 30), ("0212 ^## ## ##", 10)),
        (("A.Ş.", 60), ("Ltd. Şti.", 40)),
    ),
    Country(
        "IN", 2.5, (("India", 90), ("IN", 5), ("india", 4)),
        (City(("Bengaluru", "Bangalore"), ("560###",), weight=3), City(("Mumbai", "Bombay"), ("400###",), weight=2),
         City(("New Delhi", "Delhi"), ("110###",), weight=2), City(("Hyderabad",), ("500###",)),
         City(("Pune",), ("411###",))),
        (("+91 98### #####", 30), ("+91 22 ^### ####", 10), ("098### #####", 10), ("+91-99###-#####", 10),
         ("+91 80 ^### ####", 10)),
        (("Pvt. Ltd.", 70), ("Private Limited", 20), ("Ltd", 10)),
        region_share=0.3,
    ),
    Country(
        "JP", 1, (("Japan", 85), ("JP", 10), ("日本", 3)),
        (City(("Tokyo",), ("1##-####",), weight=3), City(("Osaka",), ("5##-####",))),
        (("+81 3-####-####", 30), ("03-####-####", 20), ("+81 90-####-####", 15)),
        (("K.K.", 50), ("Co., Ltd.", 50)),
    ),
    Country(
        "SG", 1, (("Singapore", 90), ("SG", 8), ("Republic of Singapore", 2)),
        (City(("Singapore",), ("0#####", "1#####", "4#####")),),
        (("+65 6### ####", 40), ("+65 9### ####", 25), ("6### ####", 15), ("+65 8### ####", 10)),
        (("Pte. Ltd.", 100),),
    ),
    Country(
        "AE", 0.8, (("United Arab Emirates", 50), ("UAE", 35), ("U.A.E.", 8), ("AE", 5)),
        (City(("Dubai",), weight=3), City(("Abu Dhabi",))),
        (("+971 4 ^## ####", 30), ("+971 50 ### ####", 30), ("04 ^## ####", 10)),
        (("LLC", 70), ("FZ-LLC", 30)),
    ),
    Country(
        "KR", 0.6,
        (("South Korea", 50), ("Korea, Republic of", 15), ("Korea", 15), ("Republic of Korea", 10), ("KR", 5)),
        (City(("Seoul",), ("0####",)),),
        (("+82 2-####-####", 30), ("010-####-####", 30), ("+82 10-####-####", 20)),
        (("Co., Ltd.", 100),),
    ),
    Country(
        "CI", 0.3, (("Ivory Coast", 40), ("Côte d'Ivoire", 40), ("Cote d'Ivoire", 15), ("CI", 5)),
        (City(("Abidjan",)),),
        (("+225 07 ## ## ## ##", 40), ("+225 05 ## ## ## ##", 30)),
        (("SARL", 60), ("S.A.", 40)),
    ),
)

_COUNTRIES_WITH_STATES: Final[frozenset[str]] = frozenset({"US", "CA", "AU"})


# ---------------------------------------------------------------------------------------------------------------
# Vectorised helpers. Strings are numpy StringDType arrays; columns drawn from a small set of values (country,
# title, status...) stay integer indexes into a pool until the end, when Arrow `take` turns them into strings:
# far cheaper than materialising a million Python-level strings per step.
# ---------------------------------------------------------------------------------------------------------------


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(values, dtype=_SD)


def _rng(seed: int, stream: str) -> np.random.Generator:
    # One independent stream per aspect: changing how one column is generated leaves the others unchanged.
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _choose(rng: np.random.Generator, m: int, weighted: Weighted) -> np.ndarray:
    """Indexes into `weighted`, drawn by weight, for `m` rows."""
    p = np.array([w for _, w in weighted], dtype=float)
    return rng.choice(len(weighted), size=m, p=p / p.sum())


def _uniform(rng: np.random.Generator, m: int, values: Sequence[str]) -> np.ndarray:
    return _strings(values)[rng.integers(0, len(values), m)]


def _categories(rng: np.random.Generator, m: int, shares: Sequence[float]) -> np.ndarray:
    """Per-row category: k (1-based) with probability shares[k-1], else 0 (the "clean" remainder)."""
    raw = np.searchsorted(np.cumsum(np.asarray(shares, dtype=float)), rng.random(m), side="right") + 1
    raw[raw > len(shares)] = 0
    return raw


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    out: np.ndarray | str = parts[0]
    for part in parts[1:]:
        out = np.strings.add(out, part)
    return np.asarray(out, dtype=_SD)


@cache
def _digit_pool(width: int) -> np.ndarray:
    return _strings([str(i).zfill(width) for i in range(10**width)])


_TEMPLATE_TOKEN: Final = re.compile(r"#+|\^|\?|\{A\}|[^#^?{]+")
_POSTCODE_LETTERS: Final[tuple[str, ...]] = tuple("ABEGHJLNPRSTXY")  # valid in both UK and Canadian postcodes


def _fill(rng: np.random.Generator, template: str, m: int, area: np.ndarray | None = None) -> np.ndarray:
    """Render a template m times with random digits/letters (notation above COUNTRIES)."""
    parts: list[np.ndarray | str] = []
    for token in _TEMPLATE_TOKEN.findall(template):
        if token.startswith("#"):
            width = len(token)
            while width > 0:
                chunk = min(width, 4)
                parts.append(_digit_pool(chunk)[rng.integers(0, 10**chunk, m)])
                width -= chunk
        elif token == "^":
            parts.append(_uniform(rng, m, tuple("23456789")))
        elif token == "?":
            parts.append(_uniform(rng, m, _POSTCODE_LETTERS))
        elif token == "{A}":
            if area is None:
                raise ValueError(f"template {template!r} needs area codes")
            parts.append(area)
        else:
            parts.append(token)
    literals = [part for part in parts if isinstance(part, str)]
    if len(literals) == len(parts):
        return np.full(m, "".join(literals), dtype=_SD)
    return _cat(*parts)


def _groups(keys: np.ndarray, k: int) -> list[np.ndarray]:
    """Row positions (ascending) for each key 0..k-1: one sort instead of k full-length comparisons."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(k + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(k)]


def _pad(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    pads = _strings(("", " ", "  "))
    return _cat(pads[rng.integers(0, 3, values.size)], values, pads[rng.integers(1, 3, values.size)])


def _slug(text: str) -> str:
    """ASCII, lower-case, letters/digits/hyphens only: how a name ends up in a mailbox name or domain."""
    for special, plain in (("ß", "ss"), ("ø", "o"), ("ł", "l"), ("Ł", "L"), ("ı", "i"), ("İ", "I"), ("æ", "ae")):
        text = text.replace(special, plain)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9-]", "", ascii_text.lower())


def _unicode_local(text: str) -> str:
    return re.sub(r"[\s'.]", "", text.lower())


# Variants of a pool value, in order: as is, lower, upper, leading space, trailing spaces.
_CASE_SPACE: Final[tuple[Callable[[str], str], ...]] = (
    str, str.lower, str.upper, lambda v: " " + v, lambda v: v + "  ",
)


def _variant_pool(values: Sequence[str], variants: Sequence[Callable[[str], str]] = _CASE_SPACE) -> list[str]:
    """All variants of all values; value i in variant k sits at k * len(values) + i."""
    return [variant(v) for variant in variants for v in values]


def _vary(rng: np.random.Generator, index: np.ndarray, base: int, shares: Sequence[float]) -> np.ndarray:
    """Move a share of indexes to variant k (k-th share, 1-based) of a `_variant_pool`."""
    return index + _categories(rng, index.size, shares) * base


def _case_space_shares(lower: float, upper: float, space: float) -> tuple[float, ...]:
    return (lower, upper, space / 2, space / 2)


def _pool_column(
    pool: Sequence[str], index: np.ndarray, missing: np.ndarray, overrides: tuple[np.ndarray, np.ndarray] | None = None
) -> pa.Array:
    """Strings pool[index] (null where `missing`), with optional (sorted unique rows, values) replacing some rows."""
    array = pa.array(pool, type=pa.large_string()).take(pa.array(index, mask=missing))
    if overrides is not None and overrides[0].size:
        rows, values = overrides
        keep = ~missing[rows]
        mask = np.zeros(index.size, dtype=bool)
        mask[rows[keep]] = True
        array = pc.replace_with_mask(array, pa.array(mask), _arrow(values[keep], np.zeros(int(keep.sum()), bool)))
    return array


def _arrow(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    array = pa.array(values, mask=missing, type=pa.large_string())
    # pyarrow may hand back a ChunkedArray for StringDType input; one chunk keeps later steps cheap.
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


_BASE62: Final[np.ndarray] = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
_SF_CHECKSUM: Final[np.ndarray] = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)


def _salesforce_ids(prefix: str, sequence: np.ndarray) -> np.ndarray:
    """18-character Salesforce ids as a (rows, 18) uint8 array: key prefix, pod, "0", 9 base62 digits, checksum."""
    m = sequence.size
    codes = np.empty((m, 18), dtype=np.uint8)
    codes[:, :6] = np.frombuffer((prefix + SF_POD + "0").encode(), np.uint8)
    rest = sequence.astype(np.int64).copy()
    for position in range(14, 5, -1):
        codes[:, position] = _BASE62[rest % 62]
        rest //= 62
    # The suffix encodes which of the first 15 characters are upper case, 5 at a time (case-insensitive safety).
    upper = (codes[:, :15] >= ord("A")) & (codes[:, :15] <= ord("Z"))
    bits = (upper.reshape(m, 3, 5) * (1 << np.arange(5))).sum(axis=2)
    codes[:, 15:] = _SF_CHECKSUM[bits]
    return codes


def _lead_id_column(
    codes: np.ndarray, short: np.ndarray, left: np.ndarray, right: np.ndarray, missing: np.ndarray
) -> pa.Array:
    """Ids straight from bytes to Arrow: 15-character where `short`, space-padded where `left`/`right`."""
    n = codes.shape[0]
    framed = np.full((n, 20), ord(" "), dtype=np.uint8)
    framed[:, 1:19] = codes
    keep = np.ones((n, 20), dtype=bool)
    keep[:, 0] = left
    keep[:, 19] = right
    keep[short, 16:19] = False
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    data = framed[keep]
    validity = np.packbits(~missing, bitorder="little")
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(validity), int(missing.sum())
    )


# ---------------------------------------------------------------------------------------------------------------
# Pools that do not depend on the seed
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Geo:
    """Flattened geography: every country spelling, city spelling and state value, with per-country offsets."""

    spellings: tuple[str, ...]
    spelling_offset: tuple[int, ...]
    city_names: tuple[str, ...]
    city_offset: tuple[tuple[int, ...], ...]  # per country, per city: first spelling's position
    states: tuple[str, ...]  # codes, names, lower-case names, upper-case names, then JUNK_STATES
    state_index: tuple[tuple[int, ...], ...]  # per country, per city: position of the code (or -1: no state)
    suffixes: tuple[str, ...]
    suffix_offset: tuple[int, ...]
    free_domains: tuple[str, ...]
    free_offset: tuple[int, ...]


@cache
def _geo() -> _Geo:
    spellings: list[str] = []
    spelling_offset: list[int] = []
    city_names: list[str] = []
    city_offset: list[tuple[int, ...]] = []
    codes: list[str] = []
    names: list[str] = []
    state_index: list[tuple[int, ...]] = []
    suffixes: list[str] = []
    suffix_offset: list[int] = []
    free: list[str] = []
    free_offset: list[int] = []
    for spec in COUNTRIES:
        spelling_offset.append(len(spellings))
        spellings.extend(v for v, _ in spec.spellings)
        offsets: list[int] = []
        states: list[int] = []
        for city in spec.cities:
            offsets.append(len(city_names))
            city_names.extend(city.names)
            if city.state[1]:
                states.append(len(codes))
                codes.append(city.state[0] or city.state[1])
                names.append(city.state[1])
            else:
                states.append(-1)
        city_offset.append(tuple(offsets))
        state_index.append(tuple(states))
        suffix_offset.append(len(suffixes))
        suffixes.extend(v for v, _ in spec.suffixes)
        free_offset.append(len(free))
        free.extend(v for v, _ in spec.free_mail)
    states_pool = (*codes, *names, *(s.lower() for s in names), *(s.upper() for s in names), *JUNK_STATES)
    return _Geo(
        tuple(spellings), tuple(spelling_offset), tuple(city_names), tuple(city_offset), states_pool,
        tuple(state_index), tuple(suffixes), tuple(suffix_offset), tuple(free), tuple(free_offset),
    )


@cache
def _companies() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Company base names, their domains, and each company's e-mail pattern (index into COMPANY_EMAIL_PATTERNS)."""
    names: list[str] = []
    domains: list[str] = []
    for i, (stem, word) in enumerate((s, w) for w in COMPANY_WORDS for s in COMPANY_STEMS):
        names.append(f"{stem} {word}")
        joiner = "-" if i % 3 == 2 else ""
        domains.append(f"{_slug(stem)}{joiner}{_slug(word)}{COMPANY_TLDS[i % len(COMPANY_TLDS)]}")
    cycle = np.repeat(np.arange(len(COMPANY_EMAIL_PATTERNS)), [int(w) for _, w in COMPANY_EMAIL_PATTERNS])
    patterns = np.random.default_rng(0).permutation(cycle)[np.arange(len(names)) % cycle.size]
    return _strings(names), _strings(domains), patterns


@cache
def _websites() -> tuple[str, ...]:
    """Every company domain in every WEBSITE_FORMS rendering (company-major), then JUNK_WEBSITES."""
    _, domains, _ = _companies()
    rendered = [
        form.replace("{}", d.upper() if form.isupper() else d) for d in domains.tolist() for form, _ in WEBSITE_FORMS
    ]
    return (*rendered, *JUNK_WEBSITES)


@cache
def _clock() -> tuple[np.ndarray, np.ndarray]:
    """"HH:MM:SS" for every second of a day, and "HH:MM" for every minute."""
    seconds = _strings([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)])
    minutes = _strings([f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)])
    return seconds, minutes


# ---------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _People:
    """Person-level attributes, shared by a lead and its duplicates: indexes and rendered strings."""

    country: np.ndarray
    city: np.ndarray  # index within the country's cities
    first: np.ndarray
    last: np.ndarray
    company: np.ndarray
    company_name: np.ndarray
    title: np.ndarray
    free_mail: np.ndarray
    email: np.ndarray
    phone: np.ndarray
    postal: np.ndarray

    def copy_rows(self, to: np.ndarray, source: np.ndarray) -> None:
        """Make rows `to` the same people as rows `source` (all right-hand sides are read before writing)."""
        for field in fields(self):
            values = getattr(self, field.name)
            values[to] = values[source]


def _people(n: int, seed: int) -> _People:
    geo = _geo()
    rng = _rng(seed, "people")
    country = _choose(rng, n, tuple((c.iso2, c.weight) for c in COUNTRIES))
    city = np.zeros(n, dtype=np.int64)
    phone = np.full(n, "", dtype=_SD)
    postal = np.full(n, "", dtype=_SD)
    suffix = np.zeros(n, dtype=np.int64)
    free_domain = np.zeros(n, dtype=np.int64)
    rng = _rng(seed, "geo")
    for ci, (spec, rows) in enumerate(zip(COUNTRIES, _groups(country, len(COUNTRIES)), strict=True)):
        m = rows.size
        if m == 0:
            continue
        cities = _choose(rng, m, tuple((c.names[0], c.weight) for c in spec.cities))
        city[rows] = cities
        area = np.full(m, "", dtype=_SD)
        for c, here in zip(spec.cities, _groups(cities, len(spec.cities)), strict=True):
            if c.areas:
                area[here] = _uniform(rng, here.size, c.areas)
            if c.postal:
                which = rng.integers(0, len(c.postal), here.size)
                for t, template in enumerate(c.postal):
                    postal[rows[here[which == t]]] = _fill(rng, template, int((which == t).sum()))
        formats = _choose(rng, m, spec.phones)
        for t, (template, _) in enumerate(spec.phones):
            here = np.flatnonzero(formats == t)
            phone[rows[here]] = _fill(rng, template, here.size, area[here])
        suffix[rows] = geo.suffix_offset[ci] + _choose(rng, m, spec.suffixes)
        free_domain[rows] = geo.free_offset[ci] + _choose(rng, m, spec.free_mail)

    rng = _rng(seed, "names")
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    names, _, _ = _companies()
    # Mildly skewed: some companies send many leads, as big accounts do.
    company = np.minimum((rng.random(n) ** 1.4 * names.size).astype(np.int64), names.size - 1)
    title = _choose(rng, n, TITLES)
    # A legal suffix on ~60% of names (", Inc." style suffixes bring their own comma).
    company_name = names[company]
    with_suffix = np.flatnonzero(rng.random(n) < 0.6)
    suffixes = _strings(geo.suffixes)[suffix[with_suffix]]
    glue = np.where(np.strings.startswith(suffixes, ","), "", " ").astype(_SD)
    company_name[with_suffix] = _cat(company_name[with_suffix], glue, suffixes)
    email, free_mail = _emails(seed, n, first, last, company, free_domain)
    return _People(country, city, first, last, company, company_name, title, free_mail, email, phone, postal)


def _emails(
    seed: int, n: int, first: np.ndarray, last: np.ndarray, company: np.ndarray, free_domain: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clean e-mail addresses (name-based, at the company's domain or a free-mail one); updates `first` in place."""
    rng = _rng(seed, "email")
    _, domains, company_patterns = _companies()
    pools = {
        "first": _strings([_slug(x) for x in FIRST_NAMES] + [_unicode_local(x) for x in FIRST_NAMES]),
        "last": _strings([_slug(x) for x in LAST_NAMES]),
        "f": _strings([_slug(x)[:1] for x in FIRST_NAMES]),
        "l": _strings([_slug(x)[:1] for x in LAST_NAMES]),
    }
    # A few mailboxes keep the accents of the name ("jürgen.müller@"): the unicode-local-part mess.
    accented_names = np.flatnonzero([_slug(x) != _unicode_local(x) for x in FIRST_NAMES])
    accented = rng.random(n) < 0.004
    first[accented] = accented_names[rng.integers(0, accented_names.size, int(accented.sum()))]
    indexes = {"first": first + accented * len(FIRST_NAMES), "last": last, "f": first, "l": last}

    def render(pattern: str, rows: np.ndarray) -> list[np.ndarray | str]:
        tokens = re.findall(r"first|last|f|l|[._]", pattern)
        return [pools[t][indexes[t][rows]] if t in pools else t for t in tokens]

    free_mail = rng.random(n) < 0.22
    local = np.full(n, "", dtype=_SD)
    by_company = company_patterns[company]
    for k, (pattern, _) in enumerate(COMPANY_EMAIL_PATTERNS):
        rows = np.flatnonzero(~free_mail & (by_company == k))
        local[rows] = _cat(*render(pattern, rows))
    free_pattern = _choose(rng, n, FREE_EMAIL_PATTERNS)
    years = _strings([str(y) for y in range(1960, 2006)])
    for k, (pattern, _) in enumerate(FREE_EMAIL_PATTERNS):
        rows = np.flatnonzero(free_mail & (free_pattern == k))
        stem = pattern.rstrip("#")
        digits = len(pattern) - len(stem)
        parts = render(stem, rows)
        if digits == 4:  # birth years
            parts.append(years[rng.integers(0, years.size, rows.size)])
        elif digits:
            parts.append(_digit_pool(digits)[rng.integers(0, 10**digits, rows.size)])
        local[rows] = _cat(*parts)
    role = np.flatnonzero(~free_mail & (rng.random(n) < 0.02))
    local[role] = _uniform(rng, role.size, ROLE_LOCAL_PARTS)
    domain = domains[company]
    domain[free_mail] = _strings(_geo().free_domains)[free_domain[free_mail]]
    return _cat(local, "@", domain), free_mail


def _mess_emails(rng: np.random.Generator, email: np.ndarray, people: _People) -> None:
    """In place: the ways e-mail addresses get mangled on the way into a CRM."""
    kind = _categories(
        rng, email.size,
        # upper, capitalised, padded, trailing dot, no "@", "@@", inner space, typo domain, placeholder, comma,
        # mailto:, "Name <addr>"
        (0.025, 0.02, 0.03, 0.004, 0.004, 0.003, 0.003, 0.007, 0.004, 0.002, 0.002, 0.002),
    )
    rows = [np.flatnonzero(kind == k) for k in range(13)]
    email[rows[1]] = np.strings.upper(email[rows[1]])
    email[rows[2]] = np.strings.capitalize(email[rows[2]])
    email[rows[3]] = _pad(rng, email[rows[3]])
    email[rows[4]] = _cat(email[rows[4]], ".")
    email[rows[5]] = np.strings.replace(email[rows[5]], "@", _uniform(rng, rows[5].size, ("", " at ", "(at)", "")))
    email[rows[6]] = np.strings.replace(email[rows[6]], "@", "@@")
    email[rows[7]] = np.strings.replace(email[rows[7]], "@", _uniform(rng, rows[7].size, (" @", "@ ", " @ ")))
    typo_free = rows[8][people.free_mail[rows[8]]]
    local_part = np.strings.partition(email[typo_free], np.array("@", dtype=_SD))[0]
    email[typo_free] = _cat(local_part, "@", _uniform(rng, typo_free.size, TYPO_FREE_DOMAINS))
    typo_company = rows[8][~people.free_mail[rows[8]]]
    email[typo_company] = np.strings.replace(email[typo_company], ".com", ".con")
    email[rows[9]] = _uniform(rng, rows[9].size, PLACEHOLDER_EMAILS)
    email[rows[10]] = np.strings.replace(email[rows[10]], ".", ",", 1)
    email[rows[11]] = _cat("mailto:", email[rows[11]])
    named = rows[12]
    first = _strings(FIRST_NAMES)[people.first[named]]
    last = _strings(LAST_NAMES)[people.last[named]]
    email[named] = _cat(first, " ", last, " <", email[named], ">")


def _timestamps(rng: np.random.Generator, seconds: np.ndarray, formats: np.ndarray) -> np.ndarray:
    """Render epoch seconds, each row in its DATE_FORMATS format (-1: junk)."""
    clock, minutes = _clock()
    n = seconds.size
    out = np.full(n, "", dtype=_SD)
    if n == 0:
        return out
    day0 = int(seconds.min()) // 86400 - 1
    dates = [datetime.fromtimestamp((day0 + d) * 86400, UTC) for d in range(int(seconds.max()) // 86400 - day0 + 2)]
    iso_t = _strings([f"{d:%Y-%m-%d}T" for d in dates])
    iso_space = _strings([f"{d:%Y-%m-%d} " for d in dates])
    us = _strings([f"{d:%m/%d/%Y}" for d in dates])
    us_space = _strings([f"{d:%m/%d/%Y} " for d in dates])
    for k in range(len(DATE_FORMATS)):
        rows = np.flatnonzero(formats == k)
        at = seconds[rows]
        if k == 1:  # local time with its offset: the same instant
            offset = rng.integers(0, len(TZ_OFFSETS), rows.size)
            at = at + np.array([s for _, s in TZ_OFFSETS])[offset]
        day, tod = at // 86400 - day0, at % 86400
        if k == 0:
            out[rows] = _cat(iso_t[day], clock[tod], "Z")
        elif k == 1:
            out[rows] = _cat(iso_t[day], clock[tod], _strings([o for o, _ in TZ_OFFSETS])[offset])
        elif k == 2:
            millis = _digit_pool(3)[rng.integers(0, 1000, rows.size)]
            out[rows] = _cat(iso_t[day], clock[tod], ".", millis, "Z")
        elif k == 3:
            out[rows] = _cat(iso_space[day], clock[tod])
        elif k == 4:
            out[rows] = us[day]
        elif k == 5:
            out[rows] = _cat(us_space[day], minutes[tod // 60])
        else:
            out[rows] = at.astype(_SD)
    junk = np.flatnonzero(formats == -1)
    out[junk] = _uniform(rng, junk.size, JUNK_DATES)
    return out


def _dates(seed: int, n: int, start: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """created_at and updated_at (rendered), and the creation instant (epoch seconds)."""
    rng = _rng(seed, "dates")
    start_s = int(start.timestamp())
    # Most leads arrive in (roughly US) business hours, the rest at any time of day.
    day = rng.integers(1, 91, n)
    business = rng.normal(16.5 * 3600, 3 * 3600, n).astype(np.int64) % 86400
    tod = np.where(rng.random(n) < 0.7, business, rng.integers(0, 86400, n))
    created = np.minimum(start_s // 86400 * 86400 - day * 86400 + tod, start_s - 120)
    # A third are never touched after creation (bar a sync a few minutes later); the rest are worked for weeks.
    touched = rng.random(n) >= 0.3
    delta = np.where(touched, rng.exponential(10 * 86400, n).astype(np.int64) + 60, rng.integers(60, 600, n))
    late = created + delta > start_s
    delta[late] = 60 + ((start_s - created[late] - 60) * rng.random(int(late.sum()))).astype(np.int64)
    updated = created + delta

    p = np.array(DATE_FORMATS) / sum(DATE_FORMATS)
    created_format = rng.choice(p.size, size=n, p=p)
    updated_format = rng.choice(p.size, size=n, p=p)
    # A date-only value reads as midnight: only use one for updated_at once the update is on a later day.
    updated_format[(updated_format == 4) & (updated // 86400 <= created // 86400)] = 0
    created_format[rng.random(n) < 0.003] = -1
    updated_format[rng.random(n) < 0.003] = -1
    return _timestamps(rng, created, created_format), _timestamps(rng, updated, updated_format), created


def messy_leads(n: int, seed: int = 7, *, start: datetime | None = None) -> pd.DataFrame:
    """`n` realistic, messy B2B leads: CORE_INPUT_COLUMNS in order, all dtype "string" (pd.NA when missing).

    Deterministic: the same (n, seed, start) always gives the same frame. Leads are created in the 90 days before
    `start` (default DEFAULT_START; a naive datetime is taken as UTC).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    geo = _geo()
    columns: dict[str, pa.Array] = {}

    # Duplicates: ~3% of rows are a person seen before (another form fill, another system).
    people = _people(n, seed)
    rng = _rng(seed, "duplicates")
    again = np.flatnonzero(rng.random(n) < 0.03) if n > 1 else np.zeros(0, dtype=np.int64)
    people.copy_rows(again, rng.integers(0, n, again.size))

    # Identity: lead_id for CRM-born or synced leads, the e-mail for the rest; a few rows have neither.
    rng = _rng(seed, "identity")
    source = _choose(rng, n, SOURCES)
    columns["source"] = _pool_column([s for s, _ in SOURCES], source, np.zeros(n, dtype=bool))
    no_id = rng.random(n) >= np.array([LEAD_ID_SHARE[s] for s, _ in SOURCES])[source]
    no_email = ~no_id & (rng.random(n) < 0.05)
    neither = rng.random(n) < 0.003
    no_id |= neither
    no_email |= neither
    created_at, updated_at, created_s = _dates(seed, n, start)
    # Ids grow with creation time, as Salesforce's do; with gaps, because other records share the counter.
    sequence = np.empty(n, dtype=np.int64)
    sequence[np.argsort(created_s, kind="stable")] = 1_100_000 + np.cumsum(rng.integers(1, 40, n))
    short = rng.random(n) < 0.02  # 15-character ids, as reports and Excel exports carry them
    left, right = rng.random(n) < 0.0015, rng.random(n) < 0.0015
    columns["lead_id"] = _lead_id_column(_salesforce_ids("00Q", sequence), short, left, right, no_id)
    email = people.email
    _mess_emails(_rng(seed, "email-mess"), email, people)
    columns["email"] = _arrow(email, no_email)

    # Names: case, spaces, honorifics, a full name typed into first_name.
    rng = _rng(seed, "name-mess")
    shares = _case_space_shares(0.05, 0.035, 0.03)
    first = _vary(rng, people.first, len(FIRST_NAMES), shares)
    last = _vary(rng, people.last, len(LAST_NAMES), shares)
    kind = _categories(rng, n, (0.003, 0.005))
    honorific = np.flatnonzero(kind == 1)
    whole = np.flatnonzero(kind == 2)
    first_pool, last_pool = _variant_pool(FIRST_NAMES), _variant_pool(LAST_NAMES)
    override_rows = np.concatenate([honorific, whole])
    override_values = np.concatenate([
        _cat(_uniform(rng, honorific.size, ("Dr. ", "Mr. ", "Ms. ", "Prof. ")), _strings(first_pool)[first[honorific]]),
        _cat(_strings(first_pool)[first[whole]], " ", _strings(last_pool)[last[whole]]),
    ])
    order = np.argsort(override_rows)
    missing_last = rng.random(n) < 0.015
    missing_last[whole] = True
    columns["first_name"] = _pool_column(
        first_pool, first, rng.random(n) < 0.025, (override_rows[order], override_values[order])
    )
    columns["last_name"] = _pool_column(last_pool, last, missing_last)

    # Company.
    rng = _rng(seed, "company-mess")
    company = people.company_name
    kind = _categories(rng, n, (0.03, 0.03, 0.03, 0.003, 0.01))
    rows = [np.flatnonzero(kind == k) for k in range(6)]
    company[rows[1]] = np.strings.lower(company[rows[1]])
    company[rows[2]] = np.strings.upper(company[rows[2]])
    company[rows[3]] = _pad(rng, company[rows[3]])
    company[rows[4]] = np.strings.replace(company[rows[4]], " ", "  ", 1)
    company[rows[5]] = _uniform(rng, rows[5].size, JUNK_COMPANIES)
    columns["company"] = _arrow(company, rng.random(n) < 0.04)

    # Title.
    rng = _rng(seed, "title")
    title_pool = [*_variant_pool([t for t, _ in TITLES]), *JUNK_TITLES]
    title = _vary(rng, people.title, len(TITLES), _case_space_shares(0.03, 0.015, 0.01))
    junk = np.flatnonzero(rng.random(n) < 0.012)
    title[junk] = len(title_pool) - len(JUNK_TITLES) + rng.integers(0, len(JUNK_TITLES), junk.size)
    columns["title"] = _pool_column(title_pool, title, rng.random(n) < 0.08)

    # Phone.
    rng = _rng(seed, "phone")
    phone = people.phone
    kind = _categories(rng, n, (0.025, 0.005, 0.01))
    rows = [np.flatnonzero(kind == k) for k in range(4)]
    phone[rows[1]] = _uniform(rng, rows[1].size, JUNK_PHONES)
    phone[rows[2]] = _cat("tel:", phone[rows[2]])
    phone[rows[3]] = _pad(rng, phone[rows[3]])
    columns["phone"] = _arrow(phone, rng.random(n) < 0.12)

    # Geography, per row, for the person's true country: its spelling, the city's spelling, the state's form.
    rng = _rng(seed, "geo-mess")
    country = np.zeros(n, dtype=np.int64)
    city = np.zeros(n, dtype=np.int64)
    state = np.zeros(n, dtype=np.int64)
    no_state = np.ones(n, dtype=bool)
    postal = people.postal
    n_states = (len(geo.states) - len(JUNK_STATES)) // 4
    for ci, (spec, rows_c) in enumerate(zip(COUNTRIES, _groups(people.country, len(COUNTRIES)), strict=True)):
        m = rows_c.size
        if m == 0:
            continue
        country[rows_c] = geo.spelling_offset[ci] + _choose(rng, m, spec.spellings)
        cities = people.city[rows_c]
        first_spelling = np.array(geo.city_offset[ci])[cities]
        n_spellings = np.array([len(c.names) for c in spec.cities])[cities]
        # The usual spelling for most; a variant ("Munich", "Muenchen") for a quarter of those that have one.
        variant = (rng.random(m) < 0.25) * (1 + rng.integers(0, 1 << 30, m) % np.maximum(n_spellings - 1, 1))
        city[rows_c] = first_spelling + np.where(n_spellings > 1, variant, 0)
        state_code = np.array(geo.state_index[ci])[cities]
        if spec.iso2 in _COUNTRIES_WITH_STATES:
            # code, name, lower-case name, upper-case name, junk; the remainder is left empty
            form = _categories(rng, m, (0.55, 0.33, 0.04, 0.02, 0.01))
            rendered = state_code + np.maximum(form - 1, 0) * n_states
            junk_state = form == 5
            rendered[junk_state] = 4 * n_states + rng.integers(0, len(JUNK_STATES), int(junk_state.sum()))
            state[rows_c] = rendered
            no_state[rows_c] = form == 0
        elif spec.region_share:
            filled = (rng.random(m) < spec.region_share) & (state_code >= 0)
            state[rows_c[filled]] = state_code[filled] + n_states
            no_state[rows_c[filled]] = False
        if spec.iso2 == "US":
            plus4 = rows_c[rng.random(m) < 0.12]
            postal[plus4] = _cat(postal[plus4], "-", _digit_pool(4)[rng.integers(0, 10000, plus4.size)])
            # Spreadsheets eat the leading zero of New England ZIP codes.
            eaten = rows_c[np.strings.startswith(postal[rows_c], "0") & (rng.random(m) < 0.25)]
            postal[eaten] = np.strings.lstrip(postal[eaten], "0")
        elif spec.iso2 == "GB":
            squashed = rows_c[rng.random(m) < 0.1]
            postal[squashed] = np.strings.replace(np.strings.lower(postal[squashed]), " ", "")
    country_pool = [*_variant_pool(geo.spellings, (*_CASE_SPACE, lambda v: v + ".")), *JUNK_COUNTRIES]
    country = _vary(rng, country, len(geo.spellings), (0.005, 0.005, 0.0025, 0.0025, 0.003))
    junk = np.flatnonzero(rng.random(n) < 0.015)
    country[junk] = len(country_pool) - len(JUNK_COUNTRIES) + rng.integers(0, len(JUNK_COUNTRIES), junk.size)
    columns["country"] = _pool_column(country_pool, country, rng.random(n) < 0.05)
    columns["state"] = _pool_column(geo.states, state, no_state)
    city_pool = [*_variant_pool(geo.city_names), "-"]
    city = _vary(rng, city, len(geo.city_names), _case_space_shares(0.02, 0.01, 0.01))
    city[rng.random(n) < 0.003] = len(city_pool) - 1
    columns["city"] = _pool_column(city_pool, city, rng.random(n) < 0.08)
    junk = np.flatnonzero(rng.random(n) < 0.005)
    postal[junk] = _uniform(rng, junk.size, JUNK_POSTAL)
    columns["postal_code"] = _arrow(postal, (rng.random(n) < 0.15) | (np.strings.str_len(postal) == 0))

    # Website: the company's domain, written every way people write it; free-mail leads rarely give one.
    rng = _rng(seed, "website")
    websites = _websites()
    site = people.company * len(WEBSITE_FORMS) + _choose(rng, n, WEBSITE_FORMS)
    junk = rng.random(n) < 0.01
    site[junk] = len(websites) - len(JUNK_WEBSITES) + rng.integers(0, len(JUNK_WEBSITES), int(junk.sum()))
    columns["website"] = _pool_column(websites, site, (rng.random(n) < 0.2) | (people.free_mail & ~junk))

    # Marketing and sales fields.
    rng = _rng(seed, "crm")
    lead_source = _choose(rng, n, LEAD_SOURCES)
    columns["lead_source"] = _pool_column([s for s, _ in LEAD_SOURCES], lead_source, rng.random(n) < 0.09)
    opt_in_pool = [*(v for v, _ in OPT_IN_VALUES), *JUNK_OPT_IN]
    opt_in = _choose(rng, n, OPT_IN_VALUES)
    junk = rng.random(n) < 0.002
    opt_in[junk] = len(OPT_IN_VALUES) + rng.integers(0, len(JUNK_OPT_IN), int(junk.sum()))
    columns["email_opt_in"] = _pool_column(opt_in_pool, opt_in, ~junk & (rng.random(n) < 0.19))
    columns["created_at"] = _arrow(created_at, rng.random(n) < 0.01)
    columns["updated_at"] = _arrow(updated_at, rng.random(n) < 0.04)
    owner_codes = _salesforce_ids("005", 400_000 + np.sort(rng.choice(60_000, size=40, replace=False)))
    owners = [code.decode() for code in owner_codes.view("S18").ravel()]
    columns["owner_id"] = _pool_column(owners, rng.integers(0, len(owners), n), rng.random(n) >= 0.4)
    columns["status"] = _pool_column([s for s, _ in STATUSES], _choose(rng, n, STATUSES), rng.random(n) < 0.06)

    return pd.DataFrame(
        {c: pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([columns[c]])), name=c) for c in CORE_INPUT_COLUMNS}
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m leadflow.synth --rows N --seed S --out PATH(.csv|.parquet)`."""
    parser = argparse.ArgumentParser(prog="python -m leadflow.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="number of leads")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, required=True, help="output file: .csv or .parquet")
    parser.add_argument(
        "--start", type=datetime.fromisoformat, default=None,
        help="leads are created in the ~90 days before this ISO instant (default 2026-11-01T00:00:00Z)",
    )
    args = parser.parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        parser.error("--out must end in .csv or .parquet")
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    frame = messy_leads(args.rows, args.seed, start=args.start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame):,} leads to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ---------------------------------------------------------------------------------------------------------------
# Accounts, and leads that refer to them (for lead-to-account matching tests and benchmarks).
# ---------------------------------------------------------------------------------------------------------------

ACCOUNT_SUFFIXES: Final[Weighted] = (
    ("", 30), (" Inc.", 12), (", Inc.", 5), (" Inc", 4), (" LLC", 8), (" Ltd", 5), (" Ltd.", 3), (" Limited", 2),
    (" GmbH", 5), (" S.A.", 3), (" AG", 2), (" B.V.", 2), (" Pty Ltd", 2), (" plc", 2), (" Corp.", 4),
    (" Corporation", 3), (" Co.", 2), (" Company", 1), (" GmbH & Co. KG", 1), (" SAS", 1), (" S.r.l.", 1),
)
ACCOUNT_COUNTRIES: Final[Weighted] = (
    ("US", 45), ("GB", 10), ("DE", 9), ("FR", 6), ("CA", 5), ("AU", 4), ("NL", 4), ("IN", 4), ("ES", 3), ("IT", 3),
    ("SE", 2), ("BR", 2), ("JP", 2), ("IE", 1),
)
# Stems for companies that are NOT accounts: leads from them must stay unmatched.
OUTSIDE_STEMS: Final[tuple[str, ...]] = (
    "Zephyr", "Quillon", "Yarrow", "Xantho", "Ulmus", "Vireo", "Wrenfield", "Tamarack", "Sorrel", "Rookwood",
    "Quartzline", "Pellucid", "Obsidian", "Nettle", "Marigold", "Larkspur", "Kingfisher", "Jasper", "Ivybridge",
    "Hawthorn", "Gossamer", "Foxglove", "Emberly", "Driftwood", "Cinder", "Bramble", "Amberly",
)


def _typo(rng: np.random.Generator, text: str) -> str:
    """One keyboard slip after the first 3 characters (drop, double or swap a letter)."""
    if len(text) < 6:
        return text
    i = int(rng.integers(3, len(text) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def messy_accounts(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` synthetic CRM accounts: account_id ("001…"), name, website, owner_id, employees, last_activity_at,
    country_code; all dtype "string" except employees ("Int64"). ~2% share a name and ~3% a domain with another
    account (duplicates and subsidiaries, for the tie-breakers). Deterministic in (n, seed)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    stems, words = COMPANY_STEMS, COMPANY_WORDS
    capacity = len(stems) * len(stems) * len(words)
    rng = _rng(seed, "accounts")
    pick = rng.permutation(capacity)[: min(n, capacity)]
    if n > capacity:  # beyond the name space: numbered branches ("Acme Harbor Systems 2")
        pick = np.concatenate([pick, rng.integers(0, capacity, n - capacity)])
    a, rest = np.divmod(pick, len(stems) * len(words))
    b, c = np.divmod(rest, len(words))
    base = [f"{stems[i]} {stems[j]} {words[k]}" for i, j, k in zip(a.tolist(), b.tolist(), c.tolist(), strict=True)]
    if n > capacity:
        base[capacity:] = [f"{name} {i}" for i, name in enumerate(base[capacity:], start=2)]
    tlds = np.array(COMPANY_TLDS)[rng.integers(0, len(COMPANY_TLDS), n)].tolist()
    domains = [_slug(name.replace(" ", "")) + tld for name, tld in zip(base, tlds, strict=True)]
    same_name = np.flatnonzero(rng.random(n) < 0.02)
    same_domain = np.flatnonzero(rng.random(n) < 0.03)
    if n > 1:
        for row, other in zip(same_name.tolist(), rng.integers(0, n, same_name.size).tolist(), strict=True):
            base[row] = base[other]
        for row, other in zip(same_domain.tolist(), rng.integers(0, n, same_domain.size).tolist(), strict=True):
            domains[row] = domains[other]
    suffix = np.array([s for s, _ in ACCOUNT_SUFFIXES])[_choose(rng, n, ACCOUNT_SUFFIXES)].tolist()
    the = (rng.random(n) < 0.02).tolist()
    names = [("The " if t else "") + name + s for name, s, t in zip(base, suffix, the, strict=True)]
    forms = ("https://www.{}", "http://www.{}", "www.{}", "{}", "https://{}/", "https://www.{}/en/home")
    form = rng.integers(0, len(forms), n).tolist()
    websites = [forms[f].format(d) for f, d in zip(form, domains, strict=True)]
    owner_codes = _salesforce_ids("005", 400_000 + np.sort(rng.choice(60_000, size=200, replace=False)))
    owners = np.array([code.decode() for code in owner_codes.view("S18").ravel()], dtype=object)
    last = (DEFAULT_START.timestamp() - rng.integers(0, 730 * 86400, n)).astype("datetime64[s]")
    frame = pd.DataFrame(
        {
            "account_id": [c.decode() for c in _salesforce_ids("001", 2_000_000 + np.arange(n) * 7).view("S18").ravel()],
            "name": names,
            "website": websites,
            "owner_id": owners[rng.integers(0, owners.size, n)],
            "employees": np.maximum(1, rng.lognormal(4.0, 1.6, n)).astype(np.int64),
            "last_activity_at": np.datetime_as_string(last, unit="s").astype(object) + "Z",
            "country_code": np.array([c for c, _ in ACCOUNT_COUNTRIES])[_choose(rng, n, ACCOUNT_COUNTRIES)],
        }
    ).astype("string")
    frame["employees"] = frame["employees"].astype("Int64").mask(rng.random(n) < 0.05)
    frame["website"] = frame["website"].mask(rng.random(n) < 0.04)
    frame["owner_id"] = frame["owner_id"].mask(rng.random(n) < 0.2)
    frame["last_activity_at"] = frame["last_activity_at"].mask(rng.random(n) < 0.1)
    return frame


def messy_leads_for_accounts(accounts: pd.DataFrame, n: int, seed: int = 7) -> pd.DataFrame:
    """`n` standardized-looking leads referring to `accounts` (from `messy_accounts`).

    Columns: email, email_domain, is_free_email (boolean), website, company, country_code ("string"), and the
    ground truth `true_account_id` (NA for leads of companies that are not accounts) and `kind`: "domain" (~50%:
    a company address, ~10% of them on a subdomain; or free-mail with the company website given), "name" (~20%:
    free-mail, no website, the company name re-typed: case, suffix, punctuation, a typo), "outside" (~30%: companies
    that are no account, half of them with a name close to an account's; half on free-mail). Deterministic in (accounts, n, seed).
    """
    rng = _rng(seed, "account-leads")
    m = len(accounts)
    if m == 0 and n:
        raise ValueError("accounts is empty")
    kind = _categories(rng, n, (0.5, 0.2))  # 1 domain, 2 name, 0 outside
    account = rng.integers(0, max(m, 1), n)
    site_domain = [d or "" for d in (accounts["website"].fillna("").map(_domain_of).tolist() if m else [])]
    names = accounts["name"].tolist() if m else []
    # Per account, a few ways people re-type its name (computed per account, then indexed: no per-lead Python).
    base = [re.sub(r",?\s+(Inc\.?|LLC|Ltd\.?|Limited|GmbH( & Co\. KG)?|S\.A\.|AG|B\.V\.|Pty Ltd|plc|Corp\.?|"
                   r"Corporation|Co\.|Company|SAS|S\.r\.l\.)$", "", re.sub(r"^The ", "", x)) for x in names]
    variants = np.array(
        [[b.upper() + " CORPORATION", b.lower(), b + " Inc", b.replace(" ", "  ") + ", LLC", _typo(rng, b), b]
         for b in base] or [[""] * 6], dtype=object)
    variant = rng.integers(0, variants.shape[1], n)
    free_pool = np.array(["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "yahoo.co.uk",
                          "web.de", "gmx.de", "protonmail.com"], dtype=object)
    free_domain = free_pool[rng.integers(0, free_pool.size, n)]
    domain_arr = np.array(site_domain or [""], dtype=object)[account]
    name_arr = np.array(names or [""], dtype=object)[account]

    email_domain = np.full(n, None, dtype=object)
    website = np.full(n, None, dtype=object)
    company = np.full(n, None, dtype=object)
    free = np.zeros(n, dtype=bool)
    truth = np.full(n, None, dtype=object)
    ids = accounts["account_id"].to_numpy(dtype=object) if m else np.array([None], dtype=object)

    d = np.flatnonzero((kind == 1) & (domain_arr != ""))
    via_site = rng.random(d.size) < 0.15
    sub = rng.random(d.size) < 0.1
    email_domain[d] = np.where(sub, "mail." + domain_arr[d].astype(str), domain_arr[d]).astype(object)
    email_domain[d[via_site]] = free_domain[d[via_site]]
    free[d[via_site]] = True
    website[d[via_site]] = "https://www." + domain_arr[d[via_site]].astype(str)
    company[d] = name_arr[d]
    truth[d] = ids[account[d]]

    k = np.flatnonzero((kind == 2) | ((kind == 1) & (domain_arr == "")))
    email_domain[k] = free_domain[k]
    free[k] = True
    company[k] = variants[account[k], variant[k]]
    truth[k] = ids[account[k]]

    o = np.flatnonzero(kind == 0)
    # Half the outside companies share a stem with accounts ("Acme Systems" vs the account "Acme Harbor Systems"):
    # near-but-different names that a matcher must leave unmatched.
    stem_pool = np.array(OUTSIDE_STEMS + COMPANY_STEMS, dtype=object)
    near = rng.random(o.size) < 0.5
    outside_stem = np.where(
        near,
        stem_pool[len(OUTSIDE_STEMS) + rng.integers(0, len(COMPANY_STEMS), o.size)],
        stem_pool[rng.integers(0, len(OUTSIDE_STEMS), o.size)],
    )
    outside_word = np.array(COMPANY_WORDS, dtype=object)[rng.integers(0, len(COMPANY_WORDS), o.size)]
    company[o] = outside_stem + " " + outside_word
    own = rng.random(o.size) < 0.5
    email_domain[o] = np.where(
        own, np.char.replace(np.char.lower((outside_stem + outside_word).astype(str)), " ", "").astype(object) + ".com", free_domain[o]
    )
    free[o] = ~own
    country = accounts["country_code"].to_numpy(dtype=object)[account] if m else np.full(n, None, dtype=object)
    country[o] = None
    kinds = np.array(["outside", "domain", "name"], dtype=object)[kind]
    kinds[(kind == 1) & (domain_arr == "")] = "name"
    frame = pd.DataFrame(
        {
            "email_domain": email_domain,
            "is_free_email": free,
            "website": website,
            "company": company,
            "country_code": country,
            "true_account_id": truth,
            "kind": kinds,
        }
    ).astype("string")
    frame["is_free_email"] = pd.array(free, dtype="boolean")
    return frame


def _domain_of(website: str) -> str:
    """Host of a synthetic account website without "www." (test data only: no public-suffix logic needed)."""
    host = re.sub(r"^[a-z]+://", "", website.lower()).split("/", 1)[0]
    return host.removeprefix("www.")


# ---------------------------------------------------------------------------------------------------------------
# Existing CRM leads and contacts, and new leads that may duplicate them (for duplicate-detection tests/benchmarks).
# ---------------------------------------------------------------------------------------------------------------

FREE_MAIL_FOR_EXISTING: Final[tuple[str, ...]] = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de",
)
# Formal first names of FIRST_NAMES and a nickname people also sign up with (test data: the detector has its own
# table in leadflow.duplicates).
_SYNTH_NICKNAMES: Final[dict[str, str]] = {
    "Robert": "Bob", "William": "Bill", "Richard": "Rick", "James": "Jim", "Michael": "Mike", "Thomas": "Tom",
    "Joseph": "Joe", "Charles": "Charlie", "Edward": "Ed", "Anthony": "Tony", "Daniel": "Dan", "Matthew": "Matt",
    "Andrew": "Andy", "Benjamin": "Ben", "Nicholas": "Nick", "Steven": "Steve", "Timothy": "Tim", "Kenneth": "Ken",
    "Elizabeth": "Liz", "Margaret": "Maggie", "Katherine": "Kate", "Jennifer": "Jen", "Rebecca": "Becky",
    "Susan": "Sue", "Patricia": "Patty", "Kimberly": "Kim", "Victoria": "Vicky", "Deborah": "Debbie",
}


def _existing_people(m: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`m` people at ~m/5 companies: first, last, company (as a CRM holds it), base company name, domain, email."""
    stems, words = COMPANY_STEMS, COMPANY_WORDS
    capacity = len(stems) * len(stems) * len(words)
    companies = max(1, min(capacity, m // 5 or 1))
    pick = rng.permutation(capacity)[:companies]
    a, rest = np.divmod(pick, len(stems) * len(words))
    b, c = np.divmod(rest, len(words))
    base = np.array(
        [f"{stems[i]} {stems[j]} {words[k]}" for i, j, k in zip(a.tolist(), b.tolist(), c.tolist(), strict=True)],
        dtype=object,
    )
    tlds = np.array(COMPANY_TLDS, dtype=object)[rng.integers(0, len(COMPANY_TLDS), companies)]
    domain = np.array([_slug(x.replace(" ", "")) for x in base.tolist()], dtype=object) + tlds
    suffix = np.array([s for s, _ in ACCOUNT_SUFFIXES], dtype=object)[_choose(rng, companies, ACCOUNT_SUFFIXES)]
    company_of = rng.integers(0, companies, m)
    first_idx = rng.integers(0, len(FIRST_NAMES), m)
    last_idx = rng.integers(0, len(LAST_NAMES), m)
    # Two people with one name (nicknames included) at one company cannot be told apart by anyone: redraw the first
    # name of the later one, so the ground truth stays unambiguous.
    canon = _canonical_first_codes()
    for _ in range(50):
        key = pd.Series(list(zip(canon[first_idx].tolist(), last_idx.tolist(), company_of.tolist(), strict=True)))
        again = np.flatnonzero(key.duplicated().to_numpy())
        if not again.size:
            break
        first_idx[again] = rng.integers(0, len(FIRST_NAMES), again.size)
    first = np.array(FIRST_NAMES, dtype=object)[first_idx]
    last = np.array(LAST_NAMES, dtype=object)[last_idx]
    return {
        "first": first,
        "last": last,
        "company_of": company_of,
        "base": base,
        "company": (base + suffix)[company_of],
        "domain": domain[company_of],
    }


@cache
def _canonical_first_codes() -> np.ndarray:
    """Per FIRST_NAMES entry, a code shared by names the duplicate detector takes for one ("Billy" = "William")."""
    from leadflow.duplicates import DEFAULT_NICKNAMES, first_name_key  # test data only; avoids an import cycle

    canon = {first_name_key(k): first_name_key(f) for f, nicks in DEFAULT_NICKNAMES.items() for k in [f, *nicks]}
    keys = [canon.get(first_name_key(f), first_name_key(f)) for f in FIRST_NAMES]
    return pd.factorize(np.array(keys, dtype=object))[0]


def _local(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    return np.array([_slug(f) + "." + _slug(x) for f, x in zip(first.tolist(), last.tolist(), strict=True)], dtype=object)


def _unique_addresses(local: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """`local@domain`, a number appended to the local part of the 2nd, 3rd… person with one address, as mail
    servers do ("helen.nunez2@…"): one address, one person, so the ground truth stays unambiguous."""
    email = pd.Series(local + "@" + domain, dtype=object)
    repeat = email.groupby(email, sort=False).cumcount().to_numpy()
    again = np.flatnonzero(repeat > 0)
    if again.size:
        local = local.copy()
        local[again] = local[again] + (repeat[again] + 1).astype(str).astype(object)
    return local + "@" + domain


def _free_local(first: np.ndarray, last: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Four digits: "john.smith4821", so two different people rarely share a free-mail address.
    digits = np.array([f"{d:04d}" for d in rng.integers(0, 10_000, first.size).tolist()], dtype=object)
    return _local(first, last) + digits


def messy_existing_records(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` existing CRM records: record_id, object ("Contact" ~60% / "Lead"), email, first_name, last_name, company
    (the account name for contacts), email_domain, all "string"; plus the ground truth `person_id`.

    ~5% of people have two records (a Lead and a Contact; 70% of those under the same address). ~85% of addresses are
    corporate (first.last@company-domain), the rest free-mail. Deterministic in (n, seed).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = _rng(seed, "existing-records")
    second = int(round(n * 0.05)) if n > 1 else 0
    people_n = n - second
    people = _existing_people(people_n, rng)
    person = np.concatenate([np.arange(people_n), rng.integers(0, max(people_n, 1), second)]).astype(np.int64)
    contact = rng.random(people_n) < 0.6
    is_contact = np.concatenate([contact, ~contact[person[people_n:]]]) if n else np.zeros(0, dtype=bool)

    free = rng.random(people_n) < 0.15
    free_domain = np.array(FREE_MAIL_FOR_EXISTING, dtype=object)[rng.integers(0, len(FREE_MAIL_FOR_EXISTING), people_n)]
    local = np.where(free, _free_local(people["first"], people["last"], rng), _local(people["first"], people["last"]))
    domain = np.where(free, free_domain, people["domain"])
    email = _unique_addresses(local, domain)[person] if n else np.zeros(0, dtype=object)
    email_domain = domain[person] if n else np.zeros(0, dtype=object)
    # A second record under an older address: the other kind (free-mail ↔ corporate) for 30% of them.
    moved = np.flatnonzero(rng.random(n) < 0.3)
    moved = moved[moved >= people_n]
    if moved.size:
        p = person[moved]
        old_free = ~free[p]
        alt_domain = np.where(old_free, free_domain[p], people["domain"][p])
        alt_local = np.where(
            old_free,
            _free_local(people["first"][p], people["last"][p], rng),
            _local(people["first"][p], people["last"][p]),
        )
        email[moved] = alt_local + "@" + alt_domain
        email_domain[moved] = alt_domain

    seq = np.arange(n, dtype=np.int64) * 3
    contact_ids = _salesforce_ids("003", 3_000_000 + seq).view("S18").ravel()
    lead_ids = _salesforce_ids("00Q", 3_000_000 + seq).view("S18").ravel()
    ids = np.where(is_contact, contact_ids, lead_ids)
    frame = pd.DataFrame(
        {
            "record_id": [i.decode() for i in ids.tolist()],
            "object": np.where(is_contact, "Contact", "Lead").astype(object),
            "email": email,
            "first_name": people["first"][person] if n else email,
            "last_name": people["last"][person] if n else email,
            "company": people["company"][person] if n else email,
            "email_domain": email_domain,
            "person_id": person.astype(str).astype(object),
        }
    ).astype("string")
    # CRMs hold contacts without a company name (the account is linked, not typed) and leads without one.
    frame["company"] = frame["company"].mask(rng.random(n) < 0.05)
    return frame


def messy_leads_for_existing(existing: pd.DataFrame, n: int, seed: int = 7) -> pd.DataFrame:
    """`n` standardized incoming leads, some of them people `existing` (from `messy_existing_records`) already has.

    Columns: lead_id, source, email, first_name, last_name, company, email_domain, created_at ("string"),
    is_free_email ("boolean"), and the ground truth `true_duplicate_of` (the person's preferred record: a Contact
    before a Lead, then the smallest record_id; another lead's lead_id or "email:<address>" for a repeat within the
    batch; NA for new people) with its `kind`:

    - "exact" ~30%: a known person under a known address (1 in 5 with a "+tag")
    - "fuzzy" ~15%: a known person under another address (free-mail with the company re-typed, or another corporate
      alias), first name as known, as an initial ("J.") or a nickname ("Bob")
    - "self" ~5%: an existing Lead pulled back (lead_id = its record_id): a duplicate only of the person's other record
    - "batch" ~5%: the address of an earlier new lead of the same batch
    - "new" ~45%: new people; half at known companies, a fifth of those colleagues of a known person (same last name
      and company, another first name) that must stay unmatched

    `true_person_id` names the person behind each lead (a record's `person_id`, or "new:<row>"): any answer that is
    the same person is equally right (`duplicate_answer_persons`). Deterministic in (existing, n, seed).
    """
    from leadflow.duplicates import DEFAULT_NICKNAMES, first_name_key  # test data only; avoids an import cycle

    rng = _rng(seed, "existing-leads")
    m = len(existing)
    if m == 0 and n:
        raise ValueError("existing is empty")
    kind = _categories(rng, n, (0.30, 0.15, 0.05, 0.05))  # 1 exact, 2 fuzzy, 3 self, 4 batch, 0 new
    rec_email = existing["email"].to_numpy(dtype=object, na_value=None)
    rec_first = existing["first_name"].to_numpy(dtype=object, na_value=None)
    rec_last = existing["last_name"].to_numpy(dtype=object, na_value=None)
    rec_company = existing["company"].to_numpy(dtype=object, na_value=None)
    rec_domain = existing["email_domain"].to_numpy(dtype=object, na_value=None)
    rec_ids = existing["record_id"].to_numpy(dtype=object, na_value=None)
    person = existing["person_id"].to_numpy(dtype=object, na_value=None)
    is_lead = (existing["object"] == "Lead").to_numpy(dtype=bool)

    # Preferred record per person (Contact, then smallest id), and the best record that is not a given one.
    order = pd.DataFrame({"person": person, "lead": is_lead, "id": rec_ids}).sort_values(["person", "lead", "id"])
    preferred = order.groupby("person", sort=False)["id"].agg(list).to_dict()

    first = np.full(n, None, dtype=object)
    last = np.full(n, None, dtype=object)
    company = np.full(n, None, dtype=object)
    email = np.full(n, None, dtype=object)
    domain = np.full(n, None, dtype=object)
    lead_id = np.full(n, None, dtype=object)
    truth = np.full(n, None, dtype=object)
    record = rng.integers(0, max(m, 1), n)

    known = np.flatnonzero((kind == 1) | (kind == 2))
    first[known], last[known] = rec_first[record[known]], rec_last[record[known]]
    company[known] = rec_company[record[known]]
    truth[known] = [preferred[p][0] for p in person[record[known]].tolist()]

    ex = np.flatnonzero(kind == 1)
    email[ex] = rec_email[record[ex]]
    domain[ex] = rec_domain[record[ex]]
    tagged = ex[(rng.random(ex.size) < 0.2) & np.array([e is not None for e in email[ex]], dtype=bool)]
    email[tagged] = [e.replace("@", "+news@", 1) for e in email[tagged].tolist()]

    fz = np.flatnonzero(kind == 2)
    how = rng.integers(0, 3, fz.size)
    initial = fz[how == 1]
    first[initial] = [f[0] + "." for f in first[initial].tolist()]
    nick = fz[how == 2]
    first[nick] = [_SYNTH_NICKNAMES.get(f, f) for f in first[nick].tolist()]
    free = np.zeros(n, dtype=bool)
    to_free = fz[rng.random(fz.size) < 0.6]
    free[to_free] = True
    fdom = np.array(FREE_MAIL_FOR_EXISTING, dtype=object)[rng.integers(0, len(FREE_MAIL_FOR_EXISTING), to_free.size)]
    email[to_free] = _free_local(last[to_free], first[to_free], rng) + "@" + fdom
    domain[to_free] = fdom
    # On free-mail the company is typed by the person: case, suffixes, now and then a slip.
    typed = [
        None if c is None else (c.upper(), c.lower(), c + " Inc", _typo(rng, c), c)[int(rng.integers(0, 5))]
        for c in company[to_free].tolist()
    ]
    company[to_free] = typed
    alias = np.setdiff1d(fz, to_free)
    # One alias per person ("jsmith@acme.com"; on free-mail with digits, "jsmith4821@gmail.com"), unique across
    # people as a mail server keeps it: two people sharing an alias would be one person to any detector.
    person_code, person_values = pd.factorize(person)
    first_record = np.zeros(len(person_values), dtype=np.int64)
    first_record[person_code[::-1]] = np.arange(m)[::-1]
    p_domain = rec_domain[first_record]
    p_free = np.array([d is None or d in FREE_MAIL_FOR_EXISTING for d in p_domain.tolist()], dtype=bool)
    p_local = np.array(
        [_slug(f)[:1] + _slug(x) for f, x in zip(rec_first[first_record].tolist(), rec_last[first_record].tolist(),
                                                 strict=True)],
        dtype=object,
    )
    p_local[p_free] += np.array([f"{d:04d}" for d in rng.integers(0, 10_000, int(p_free.sum())).tolist()], dtype=object)
    p_address = _unique_addresses(p_local, np.where(p_free, "gmail.com", p_domain).astype(object))
    alias_person = person_code[record[alias]]
    email[alias] = p_address[alias_person]
    domain[alias] = np.where(p_free[alias_person], "gmail.com", p_domain[alias_person])
    free[alias[p_free[alias_person]]] = True

    lead_rows = np.flatnonzero(is_lead)
    sf = np.flatnonzero(kind == 3)
    if lead_rows.size == 0:
        kind[sf] = 0
        sf = sf[:0]
    if sf.size > lead_rows.size:  # each CRM lead is pulled back at most once
        kind[sf[lead_rows.size :]] = 0
        sf = sf[: lead_rows.size]
    own = rng.choice(lead_rows, size=sf.size, replace=False) if sf.size else sf
    first[sf], last[sf], company[sf] = rec_first[own], rec_last[own], rec_company[own]
    email[sf], domain[sf], lead_id[sf] = rec_email[own], rec_domain[own], rec_ids[own]
    truth[sf] = [next((r for r in preferred[p] if r != me), None) for p, me in zip(person[own].tolist(),
                                                                                  rec_ids[own].tolist(), strict=True)]

    new = np.flatnonzero((kind == 0) | (kind == 4))
    first[new] = np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), new.size)]
    last[new] = np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), new.size)]
    at_known = new[rng.random(new.size) < 0.5]
    company[at_known] = rec_company[record[at_known]]
    known_domain = rec_domain[record[at_known]]
    corporate = np.array([d is not None and d not in FREE_MAIL_FOR_EXISTING for d in known_domain.tolist()])
    domain[at_known] = np.where(corporate, known_domain, "gmail.com")
    colleague = at_known[rng.random(at_known.size) < 0.2]
    last[colleague] = rec_last[record[colleague]]
    # A colleague's first name must differ from the known person's, nickname or initial included.
    canon = {first_name_key(k): first_name_key(f) for f, nicks in DEFAULT_NICKNAMES.items() for k in [f, *nicks]}

    def key(name: str) -> str:
        k = first_name_key(name)
        return canon.get(k, k)[:1]

    names = np.array(FIRST_NAMES, dtype=object)
    for row in colleague.tolist():
        taken = key(rec_first[record[row]])
        while key(first[row]) == taken:
            first[row] = names[int(rng.integers(0, names.size))]
    # Nor may a new person at a known company be a known person there (same last name and first name or nickname).
    first_code = {f: c for f, c in zip(FIRST_NAMES, _canonical_first_codes().tolist(), strict=True)}
    rec_code = list(map(first_code.get, rec_first.tolist()))
    known_people = set(zip(rec_code, rec_last.tolist(), rec_company.tolist(), strict=True))
    known_people |= set(zip(rec_code, rec_last.tolist(), rec_domain.tolist(), strict=True))
    for row in at_known.tolist():
        while {(first_code[first[row]], last[row], company[row]), (first_code[first[row]], last[row], domain[row])} & (
            known_people
        ):
            first[row] = names[int(rng.integers(0, names.size))]
    outside = np.setdiff1d(new, at_known)
    stems, words = np.array(OUTSIDE_STEMS, dtype=object), np.array(COMPANY_WORDS, dtype=object)
    outside_company = stems[rng.integers(0, stems.size, outside.size)] + " " + words[rng.integers(0, words.size,
                                                                                                    outside.size)]
    company[outside] = outside_company
    out_free = rng.random(outside.size) < 0.5
    domain[outside] = np.where(
        out_free,
        "gmail.com",
        np.array([_slug(c.replace(" ", "")) + ".com" for c in outside_company.tolist()], dtype=object),
    )
    corp_new = np.array([d not in FREE_MAIL_FOR_EXISTING for d in domain[new].tolist()], dtype=bool)
    free[new] = ~corp_new
    local_new = np.where(corp_new, _local(first[new], last[new]), _free_local(first[new], last[new], rng))
    # New people get addresses no one else has (not even a known person): a new lead is nobody's duplicate.
    taken = pd.Series(rec_email).dropna().to_numpy(dtype=object)
    both = _unique_addresses(
        np.concatenate([np.array([e.rsplit("@", 1)[0] for e in taken.tolist()], dtype=object), local_new]),
        np.concatenate([np.array([e.rsplit("@", 1)[1] for e in taken.tolist()], dtype=object), domain[new].astype(object)]),
    )
    email[new] = both[taken.size :]
    free[ex] = np.array(
        [d is None or d in FREE_MAIL_FOR_EXISTING for d in domain[ex].tolist()], dtype=bool
    )
    free[sf] = np.array([d is None or d in FREE_MAIL_FOR_EXISTING for d in domain[sf].tolist()], dtype=bool)

    source = np.array(["salesforce", "marketo", "hubspot", "webform"], dtype=object)[_choose(rng, n, SOURCES)]
    source[sf] = "salesforce"
    with_id = np.flatnonzero((source == "salesforce") & (kind != 3))
    lead_id[with_id] = [c.decode() for c in _salesforce_ids("00Q", 9_000_000 + with_id).view("S18").ravel().tolist()]
    created = DEFAULT_START.timestamp() - rng.integers(86_400, 90 * 86_400, n)
    # A lead pulled back from the CRM was created there before this batch.
    created[sf] = DEFAULT_START.timestamp() - rng.integers(91 * 86_400, 720 * 86_400, sf.size)

    # Repeats within the batch: the address of an earlier "new" lead, created after it.
    batch = np.flatnonzero(kind == 4)
    originals = np.flatnonzero(kind == 0)
    if batch.size and originals.size:
        orig = originals[rng.integers(0, originals.size, batch.size)]
        first[batch], last[batch], company[batch] = first[orig], last[orig], company[orig]
        email[batch], domain[batch], free[batch] = email[orig], domain[orig], free[orig]
        created[batch] = created[orig] + rng.integers(60, 86_400, batch.size)
        truth[batch] = [i if i is not None else f"email:{e}" for i, e in zip(lead_id[orig].tolist(),
                                                                              email[orig].tolist(), strict=True)]
    else:
        kind[batch] = 0

    people = np.array([f"new:{i}" for i in range(n)], dtype=object)
    people[known] = person[record[known]]
    people[sf] = person[own]
    if batch.size and originals.size:
        people[batch] = people[orig]
    kinds = np.array(["new", "exact", "fuzzy", "self", "batch"], dtype=object)[kind]
    stamps = np.datetime_as_string(created.astype("datetime64[s]"), unit="s").astype(object) + "Z"
    frame = pd.DataFrame(
        {
            "lead_id": lead_id,
            "source": source,
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "email_domain": domain,
            "created_at": stamps,
            "true_duplicate_of": truth,
            "true_person_id": people,
            "kind": kinds,
        }
    ).astype("string")
    frame.insert(7, "is_free_email", pd.array(free, dtype="boolean"))
    frame["email"] = frame["email"].str.lower()
    return frame


def duplicate_answer_persons(answers: pd.Series, leads: pd.DataFrame, existing: pd.DataFrame) -> pd.Series:
    """The person (ground truth) behind each `duplicate_of` answer: a record's `person_id`, or the `true_person_id`
    of the batch lead an answer names by lead_id or "email:<address>"; NA for no answer or an unknown id."""
    by_id = pd.concat(
        [
            pd.Series(existing["person_id"].to_numpy(), index=existing["record_id"].to_numpy()),
            pd.Series(leads["true_person_id"].to_numpy(), index=leads["lead_id"].to_numpy()),
            pd.Series(
                leads["true_person_id"].to_numpy(),
                index=("email:" + leads["email"].str.replace(r"\+[^@]*@", "@", regex=True)).to_numpy(),
            ),
        ]
    )
    by_id = by_id[by_id.index.notna()]
    by_id = by_id[~by_id.index.duplicated()]
    return answers.map(by_id).astype("string")


SAMPLE_OWNERS: Final[tuple[str, ...]] = tuple(f"0055e00000{i:02d}repAAA" for i in range(1, 9))
SAMPLE_INDUSTRIES: Final[tuple[str, ...]] = (
    "Software", "Manufacturing", "Retail", "Financial Services", "Healthcare", "Education", "Media", "Logistics",
)


def sample_reference(leads: pd.DataFrame, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CRM accounts and existing contacts/leads that fit a lead file (for the bundled demo): about 60% of the
    corporate e-mail domains are accounts (80% of them with firmographics); about 5% of the people are already
    contacts or leads, a fifth of those under another address. Deterministic in (leads, seed)."""
    from leadflow.domains import is_free_domain

    rng = _rng(seed, "sample-reference")
    email = leads["email"].astype("string").str.strip().str.lower()
    domain = email.str.extract(r"@([a-z0-9.-]+\.[a-z]{2,})$")[0]
    corporate = domain.notna() & ~domain.fillna("").map(is_free_domain).astype(bool)
    by_domain = (
        pd.DataFrame({"domain": domain[corporate], "company": leads["company"][corporate]})
        .dropna()
        .groupby("domain", sort=True)["company"]
        .agg(lambda names: names.value_counts().index[0])
    )
    chosen = by_domain[rng.random(len(by_domain)) < 0.6]
    n = len(chosen)
    known = rng.random(n) < 0.8
    employees = np.round(np.exp(rng.uniform(np.log(5), np.log(50_000), n)))
    accounts = pd.DataFrame(
        {
            "account_id": [f"0015e0000{i:06d}AAA" for i in range(1, n + 1)],
            "name": chosen.to_numpy(),
            "website": ["https://www." + d for d in chosen.index],
            "owner_id": np.array(SAMPLE_OWNERS)[rng.integers(0, len(SAMPLE_OWNERS), n)],
            "employees": np.where(known, employees, np.nan),
            "annual_revenue": np.where(known, np.round(employees * rng.uniform(8e4, 3e5, n), -3), np.nan),
            "industry": np.where(known, np.array(SAMPLE_INDUSTRIES)[rng.integers(0, len(SAMPLE_INDUSTRIES), n)], None),
        }
    )
    accounts["employees"] = accounts["employees"].astype("Int64")
    accounts["annual_revenue"] = accounts["annual_revenue"].astype("Float64")

    people = leads[email.notna()].copy()
    picked = people[rng.random(len(people)) < 0.05]
    other_address = rng.random(len(picked)) < 0.2
    record_email = email[picked.index].where(
        ~other_address, picked["first_name"].str.lower().str[:1] + "." + picked["last_name"].str.lower().str.replace(
            r"[^a-z]", "", regex=True) + "@" + domain[picked.index].fillna("example.com"))
    is_contact = rng.random(len(picked)) < 0.6
    existing = pd.DataFrame(
        {
            "record_id": [("0035e0000" if c else "00Q5e0000") + f"{i:06d}XYZ" for i, c in enumerate(is_contact, 1)],
            "object": np.where(is_contact, "Contact", "Lead"),
            "email": record_email.to_numpy(),
            "first_name": picked["first_name"].to_numpy(),
            "last_name": picked["last_name"].to_numpy(),
            "company": picked["company"].to_numpy(),
        }
    )
    return accounts.astype({"account_id": "string", "name": "string", "website": "string", "owner_id": "string",
                            "industry": "string"}), existing.astype("string")


# ---------------------------------------------------------------------------------------------------------------
# Marketing activities and a scoring history (for scoring tests, benchmarks and backtests).
# ---------------------------------------------------------------------------------------------------------------

ACTIVITY_MIX: Final[Weighted] = (
    ("page_visit", 0.46),
    ("email_open", 0.24),
    ("email_click", 0.10),
    ("form_fill", 0.07),
    ("content_download", 0.03),
    ("webinar_registered", 0.03),
    ("webinar_attended", 0.02),
    ("demo_request", 0.012),
    ("event_attended", 0.01),
    ("email_unsubscribe", 0.008),
)
ACTIVITY_DETAILS: Final[dict[str, tuple[str, ...]]] = {
    "page_visit": (
        "/", "/pricing", "/pricing#enterprise", "/product", "/product/integrations", "/product/security", "/blog",
        "/blog/lead-routing-101", "/blog/scoring-models", "/customers", "/careers", "/docs/getting-started",
        "/docs/api", "/about", "/contact",
    ),
    "email_open": ("Newsletter November", "Newsletter October", "Product launch: Routing", "Webinar invite",
                   "Nurture 1: Welcome", "Nurture 2: Case study", "Nurture 3: ROI"),
    "email_click": ("Newsletter November", "Product launch: Routing", "Webinar invite", "Nurture 2: Case study"),
    "form_fill": ("Contact us", "Talk to sales", "Request a quote", "Whitepaper: RevOps 2027", "Ebook: Lead scoring",
                  "Newsletter signup", "Report: State of B2B pipeline"),
    "content_download": ("Whitepaper: RevOps 2027", "Ebook: Lead scoring", "Report: State of B2B pipeline"),
    "webinar_registered": ("Webinar: Routing at scale", "Webinar: Scoring that sales trusts"),
    "webinar_attended": ("Webinar: Routing at scale", "Webinar: Scoring that sales trusts"),
    "demo_request": ("Demo request", "Free trial"),
    "event_attended": ("SaaStr booth", "Dreamforce dinner", "RevOps meetup"),
    "email_unsubscribe": ("All emails", "Newsletter"),
}


def messy_activities(leads: pd.DataFrame, n: int, seed: int = 7, *, end: datetime | None = None) -> pd.DataFrame:
    """`n` marketing activities of `leads` in `leadflow.scoring.ACTIVITY_COLUMNS`, sorted by `occurred_at`.

    Keys are `leadflow.schema.lead_keys(leads)` (leads without a key get none). Skewed like real engagement: a
    lead's activity rate is log-normal, so most leads have few activities and some many (and some none). Times lie
    in the 365 days before `end` (default `DEFAULT_START`), more of them recent; ~8% of details are missing.
    Deterministic in (leads' keys, n, seed, end)."""
    from leadflow.schema import lead_keys

    end = end or DEFAULT_START
    keys = lead_keys(leads).dropna().unique()
    rng = _rng(seed, "activities")
    if n == 0 or len(keys) == 0:
        return pd.DataFrame({
            "lead_key": pd.Series(dtype="string"),
            "activity_type": pd.Series(dtype="string"),
            "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "detail": pd.Series(dtype="string"),
        })
    rate = rng.lognormal(0.0, 1.4, len(keys))
    cdf = np.cumsum(rate)
    who = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(keys) - 1)
    kind = _choose(rng, n, ACTIVITY_MIX)
    # Detail: one flat pool, each type drawing from its own slice of it.
    pool: list[str] = []
    offsets, sizes = [], []
    for name, _ in ACTIVITY_MIX:
        offsets.append(len(pool))
        sizes.append(len(ACTIVITY_DETAILS[name]))
        pool += ACTIVITY_DETAILS[name]
    offset, size = np.array(offsets)[kind], np.array(sizes)[kind]
    # Skewed within a type too: the first details (home page, pricing, newsletter) are the most common.
    pick = np.minimum((rng.power(0.6, n) * size).astype(np.int64), size - 1)
    detail_idx = offset + pick
    missing = rng.random(n) < 0.08
    age_s = np.minimum(rng.exponential(60 * 86_400, n), 365 * 86_400 - 1).astype(np.int64)
    stamp = pd.Timestamp(end)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    stamps = np.datetime64(stamp.tz_localize(None).as_unit("ns").to_datetime64(), "ns") - age_s.astype("timedelta64[s]")
    order = np.argsort(stamps, kind="stable")
    key_arr = pa.array(pd.Series(keys, dtype="string").to_numpy(dtype=object), type=pa.large_string())
    type_arr = pa.array([name for name, _ in ACTIVITY_MIX], type=pa.large_string())
    pool_arr = pa.array(pool, type=pa.large_string())

    def strings(table: pa.Array, idx: np.ndarray, mask: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
        taken = table.take(pa.array(idx, mask=mask))
        return pd.arrays.ArrowStringArray(pa.chunked_array([taken]))

    return pd.DataFrame({
        "lead_key": strings(key_arr, who[order]),
        "activity_type": strings(type_arr, kind[order]),
        "occurred_at": pd.DatetimeIndex(stamps[order]).tz_localize(UTC).as_unit("ns"),
        "detail": strings(pool_arr, detail_idx[order], missing[order]),
    })


SCORING_TITLES: Final[tuple[tuple[str, str, str, float], ...]] = (
    # title, seniority, department, weight
    ("Chief Revenue Officer", "c_level", "executive", 0.03),
    ("CEO", "c_level", "executive", 0.03),
    ("VP Marketing", "vp", "marketing", 0.05),
    ("VP Sales", "vp", "sales", 0.05),
    ("Director of IT", "director", "it", 0.06),
    ("Director, Demand Generation", "director", "marketing", 0.06),
    ("Marketing Operations Manager", "manager", "marketing", 0.10),
    ("Sales Manager", "manager", "sales", 0.08),
    ("Finance Manager", "manager", "finance", 0.04),
    ("Software Engineer", "individual", "engineering", 0.12),
    ("Account Executive", "individual", "sales", 0.10),
    ("HR Specialist", "individual", "hr", 0.05),
    ("Marketing Student", "individual", "other", 0.04),
    ("Intern", "individual", "other", 0.03),
    ("Consultant", "unknown", "other", 0.16),
)


def scoring_leads(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` standardized-looking leads (as after standardize/enrich/comply) with the columns the default scoring
    model reads, plus `created_at` (UTC, in the 180 days before `DEFAULT_START`). Deterministic in (n, seed)."""
    rng = _rng(seed, "scoring-leads")
    titles = SCORING_TITLES
    t = rng.choice(len(titles), size=n, p=np.array([w for *_, w in titles]) / sum(w for *_, w in titles))
    free = rng.random(n) < 0.18
    companies = np.array([f"company{i:05d}" for i in range(max(1, n // 4))], dtype=object)
    company = companies[rng.integers(0, len(companies), n)]
    free_domains = np.array(["gmail.com", "yahoo.com", "outlook.com"], dtype=object)
    domain = np.where(free, free_domains[rng.integers(0, 3, n)], np.char.add(company.astype(str), ".com").astype(object))
    competitor = rng.random(n) < 0.004
    domain = np.where(competitor, "rivalsoft.io", domain)
    role = rng.random(n) < 0.04
    local = np.where(role, "info", np.char.add("p", np.arange(n).astype(str)).astype(object))
    email = np.char.add(np.char.add(local.astype(str), "@"), domain.astype(str))
    employees = np.round(np.exp(rng.uniform(np.log(2), np.log(50_000), n))).astype(np.int64)
    known_size = rng.random(n) < 0.85
    segment = np.where(employees <= 99, "smb", np.where(employees <= 999, "mid_market", "enterprise"))
    countries = np.array(["US", "CA", "GB", "DE", "FR", "NO", "IN", "BR", "JP", "ES"])
    country = countries[rng.choice(10, size=n, p=[0.35, 0.06, 0.1, 0.08, 0.05, 0.02, 0.12, 0.08, 0.06, 0.08])]
    industries = np.array(SAMPLE_INDUSTRIES + ("Government",))
    industry = industries[rng.integers(0, len(industries), n)]
    has_phone = rng.random(n) < 0.6
    mailable = rng.random(n) < 0.85
    created_s = rng.integers(0, 180 * 86_400, n)
    created = pd.DatetimeIndex(
        np.datetime64(DEFAULT_START.replace(tzinfo=None), "ns") - created_s.astype("timedelta64[s]")
    ).tz_localize(UTC)
    leads = pd.DataFrame({
        "lead_id": pd.array([f"00Q{i:012d}" for i in range(n)], dtype="string"),
        "source": pd.array(["salesforce"] * n, dtype="string"),
        "email": pd.array(email, dtype="string"),
        "email_domain": pd.array(domain.astype(str), dtype="string"),
        "is_free_email": pd.array(free, dtype="boolean"),
        "is_role_email": pd.array(role, dtype="boolean"),
        "is_disposable_email": pd.array(np.zeros(n, bool), dtype="boolean"),
        "company": pd.array(company.astype(str), dtype="string"),
        "title": pd.array([titles[i][0] for i in t], dtype="string"),
        "seniority": pd.array([titles[i][1] for i in t], dtype="string"),
        "department": pd.array([titles[i][2] for i in t], dtype="string"),
        "country_code": pd.array(country, dtype="string"),
        "phone_e164": pd.array(np.where(has_phone, np.char.add("+1555", np.char.zfill((np.arange(n) % 10_000_000).astype(str), 7)), None),
                               dtype="string"),
        "employees": pd.array(np.where(known_size, employees, 0), dtype="Int64").copy(),
        "industry": pd.array(industry, dtype="string"),
        "segment": pd.array(np.where(known_size, segment, None), dtype="string"),
        "mailable": pd.array(mailable, dtype="boolean"),
        "created_at": created,
    })
    leads.loc[~known_size, "employees"] = pd.NA
    return leads


def scoring_history(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leads, activities) for scoring backtests: `scoring_leads(n, seed)` plus an `outcome` column (Int64 0/1:
    became an opportunity), and their activities (`messy_activities`, ~8 per lead, up to `DEFAULT_START`).

    `outcome` is drawn with a probability that rises with fit and engagement (a logistic of the default model's
    fit and engagement scores as of `DEFAULT_START`, plus noise), so a good model ranks converters first without
    separating them perfectly. Deterministic in (n, seed)."""
    from leadflow.scoring import load_scoring_model, score_leads

    leads = scoring_leads(n, seed)
    rng = _rng(seed, "scoring-history")
    activities = messy_activities(leads, 8 * n, seed, end=DEFAULT_START)
    scores = score_leads(leads, activities, load_scoring_model(), as_of=DEFAULT_START)
    fit = scores["fit_score"].to_numpy(dtype=float)
    engagement = scores["engagement_score"].to_numpy(dtype=float)
    logit = -3.2 + 0.035 * fit + 0.04 * engagement + rng.normal(0.0, 0.8, n)
    outcome = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    leads["outcome"] = pd.array(outcome.astype(np.int64), dtype="Int64")
    return leads, activities


__all__ += ["messy_activities", "scoring_history", "scoring_leads"]


# ---------------------------------------------------------------------------------------------- routing (appended)

ROUTING_STATES: Final[tuple[tuple[str, str, int, int], ...]] = (
    # (state_code, country, first ZIP, last ZIP): a few states per region, ZIPs inside the state's real range.
    ("US-CA", "US", 90001, 96162), ("US-WA", "US", 98001, 99403), ("US-CO", "US", 80001, 81658),
    ("US-TX", "US", 75001, 79999), ("US-NY", "US", 10001, 14925), ("US-MA", "US", 1001, 2791),
    ("US-FL", "US", 32003, 34997), ("US-IL", "US", 60001, 62999), ("CA-ON", "CA", 0, 0), ("CA-BC", "CA", 0, 0),
)
ROUTING_OWNERS: Final[tuple[str, ...]] = (
    "0058c00000AveryQ", "0058c00000CarlaQ", "0058c00000HugoQ", "0058c00000ElseQ", "0058c00099GoneQ",
)
"""Account owners `routing_leads` draws from: users of the reference routing config, one inactive, one unknown."""


def routing_leads(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` leads as the route stage sees them (after enrich/score/lifecycle), with the columns the reference routing
    config (`reference/routing.yaml`) reads: lead_id, source, email, company, lead_source, country_code,
    state_code, postal_code, segment, industry, account_owner_id (~20%), duplicate_of (~4%), grade, score,
    lifecycle_stage, mailable. About 45% US, 8% CA, 35% EMEA, the rest elsewhere. Deterministic in (n, seed)."""
    rng = _rng(seed, "routing-leads")
    countries = np.array(["US", "CA", "GB", "DE", "FR", "SE", "NL", "ES", "IN", "BR", "JP", "AU"])
    country = countries[rng.choice(len(countries), size=n,
                                   p=[0.45, 0.08, 0.1, 0.08, 0.06, 0.03, 0.04, 0.04, 0.05, 0.03, 0.02, 0.02])]
    us_states = [s for s in ROUTING_STATES if s[1] == "US"]
    ca_states = [s for s in ROUTING_STATES if s[1] == "CA"]
    state = np.full(n, None, dtype=object)
    postal = np.full(n, None, dtype=object)
    us = np.flatnonzero(country == "US")
    pick = rng.integers(0, len(us_states), us.size)
    state[us] = np.array([s[0] for s in us_states], dtype=object)[pick]
    low = np.array([s[2] for s in us_states])[pick]
    high = np.array([s[3] for s in us_states])[pick]
    zips = low + (rng.random(us.size) * (high - low + 1)).astype(np.int64)
    postal[us] = np.char.zfill(zips.astype(str), 5).astype(object)
    ca = np.flatnonzero(country == "CA")
    state[ca] = np.array([s[0] for s in ca_states], dtype=object)[rng.integers(0, len(ca_states), ca.size)]
    postal[ca] = np.where(state[ca] == "CA-ON", "M5V 2T6", "V6B 1A1")
    missing_postal = rng.random(n) < 0.07
    postal[missing_postal] = None
    segment = np.array(["smb", "mid_market", "enterprise"], dtype=object)[rng.choice(3, size=n, p=[0.55, 0.3, 0.15])]
    segment[rng.random(n) < 0.08] = None
    industries = np.array(SAMPLE_INDUSTRIES, dtype=object)
    sources = np.array(["Web Form", "Demo Request", "Webinar", "Content Download", "Paid Search", "Referral"], dtype=object)
    lead_source = sources[rng.choice(len(sources), size=n, p=[0.3, 0.1, 0.15, 0.2, 0.15, 0.1])]
    owners = np.array(ROUTING_OWNERS, dtype=object)
    account_owner = np.where(rng.random(n) < 0.2, owners[rng.integers(0, len(owners), n)], None)
    duplicate = np.where(rng.random(n) < 0.04, np.char.add("00Q9", np.char.zfill(np.arange(n).astype(str), 11)).astype(object), None)
    score = np.round(rng.gamma(2.0, 20.0, n), 1)
    grade = np.array(["A", "B", "C", "D"], dtype=object)[rng.choice(4, size=n, p=[0.08, 0.17, 0.35, 0.4])]
    email = np.char.add(np.char.add("p", np.arange(n).astype(str)), "@example.com").astype(object)
    email[rng.random(n) < 0.02] = None
    ids = np.char.add("00Q8", np.char.zfill(np.arange(n).astype(str), 11))
    return pd.DataFrame({
        "lead_id": pd.array(ids, dtype="string"),
        "source": pd.array(np.full(n, "salesforce"), dtype="string"),
        "email": pd.array(email, dtype="string"),
        "company": pd.array(np.char.add("company", (np.arange(n) % 50_000).astype(str)), dtype="string"),
        "lead_source": pd.array(lead_source, dtype="string"),
        "country_code": pd.array(country, dtype="string"),
        "state_code": pd.array(state, dtype="string"),
        "postal_code": pd.array(postal, dtype="string"),
        "segment": pd.array(segment, dtype="string"),
        "industry": pd.array(industries[rng.integers(0, len(industries), n)], dtype="string"),
        "account_owner_id": pd.array(account_owner, dtype="string"),
        "duplicate_of": pd.array(duplicate, dtype="string"),
        "score": pd.array(score, dtype="Float64"),
        "grade": pd.array(grade, dtype="string"),
        "lifecycle_stage": pd.array(np.where(score >= 60, "mql", "new"), dtype="string"),
        "mailable": pd.array(rng.random(n) < 0.85, dtype="boolean"),
    })


__all__ += ["ROUTING_OWNERS", "ROUTING_STATES", "routing_leads"]
