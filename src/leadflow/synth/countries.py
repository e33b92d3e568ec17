"""Geography of the messy-lead generator: per country its spellings, cities (postal-code templates, states, area
codes), phone formats, legal suffixes and free-mail domains. Test data, not reference data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from leadflow.synth.vocab import FREE_MAIL_DEFAULT, Weighted

__all__ = ["COUNTRIES", "City", "Country"]


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
