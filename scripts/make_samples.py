"""Write data/sample_prompts.jsonl (run once; the JSONL is the source of truth afterwards)."""

import json
from pathlib import Path

MENU_EXAMPLES = """Taste-likes: I've a sweet-tooth
Taste-dislikes: Don't like onions or garlic
Suggestion: Onion soup
Analysis: it has cooked onions in it, which you don't like.
Recommendation: {first_recommendation}

Taste-likes: I've a sweet-tooth
Taste-dislikes: Don't like onions or garlic
Suggestion: Baguette maison au levain
Analysis: Home-made leaven bread in france is usually great
Recommendation: Likely good.

Taste-likes: I've a sweet-tooth
Taste-dislikes: Don't like onions or garlic
Suggestion: Macaron in france
Analysis: Sweet with many kinds of flavours
Recommendation: You have to try it.

## Now analyze one more example:

Taste-likes: {food_likes}
Taste-dislikes: {food_dislikes}
Suggestion: {menu_item}
Analysis:"""

MENU = "Analyze a menu item in a restaurant.\n\n## For example:\n\n" + MENU_EXAMPLES
CONSTITUTION = (
    "Analyze a menu item in a restaurant.\n\n"
    "* The analysis should be brief and to the point.\n"
    "* The analysis and recommendation should both be clear about the suitability for someone "
    "with a specified dietary restriction.\n\n## For example:\n\n" + MENU_EXAMPLES
)
MENU_VALUES = {"food_likes": "Cheese", "food_dislikes": "Can't eat eggs", "menu_item": "Quiche Lorraine"}

RECORDS = [
    {
        "source": "fewshot-mistake",
        "template": MENU,
        "variables": {**MENU_VALUES, "first_recommendation": "You have to try it."},
        "notes": "The first example's analysis says 'you don't like' onions but recommends trying them. "
        "Explain the Recommendation line at sentence level: that mismatched example lights up.",
    },
    {
        "source": "fewshot-fixed",
        "template": MENU,
        "variables": {**MENU_VALUES, "first_recommendation": "Avoid."},
        "notes": "Same prompt with the first example fixed to 'Avoid.': the recommendation changes.",
    },
    {
        "source": "fewshot-constitution",
        "template": CONSTITUTION,
        "variables": {**MENU_VALUES, "first_recommendation": "Avoid."},
        "notes": "Principles at the top ask for clarity about dietary restrictions; "
        "check whether they drive the recommendation.",
    },
    {
        "source": "gsm8k-fewshot",
        "template": (
            "Solve each word problem. Show the arithmetic, then give the answer.\n\n"
            "Q: Tom has 3 apples and buys 4 more. How many apples does he have?\n"
            "A: 3 + 4 = 7. The answer is 7.\n\n"
            "Q: A box holds 6 eggs. How many eggs are in 5 boxes?\n"
            "A: 6 * 5 = 30. The answer is 30.\n\n"
            "Q: {question}\nA:"
        ),
        "variables": {
            "question": "Sara has 12 pencils and gives away 5. How many pencils does she have left?"
        },
        "notes": "Few-shot arithmetic. The 270M model copies the format but gets the sum wrong "
        "('12 - 5 = 6'): explain the wrong number and see whether the question's numbers or the examples drove it.",
    },
    {
        "source": "headline",
        "template": ("Write a short headline for the article.\n\nArticle: {article}\nHeadline:"),
        "variables": {
            "article": "The city council voted on Tuesday to build a new public library in the old "
            "train station. Construction starts next spring and the library should open in two years."
        },
        "notes": "Headline generation. The 270M base model copies the article instead of summarising: "
        "a lesson in what small models do with an under-specified instruction.",
    },
    {
        "source": "constitution-ideas",
        "template": (
            "List three ideas for using an old {object} at home.\n\n"
            "Principles:\n* Every idea must be safe for children.\n* {principle}\n\n"
            "Ideas:\n1."
        ),
        "variables": {"object": "glass jar", "principle": "Ideas should cost nothing."},
        "notes": "Constitution-guided idea list: edit the second principle and watch whether the ideas and the salience follow it.",
    },
    {
        "source": "copy-from-context",
        "template": (
            "Answer the question using the context.\n\nContext: {context}\n\nQuestion: {question}\nAnswer:"
        ),
        "variables": {
            "context": "The museum opens at 9 am on weekdays and at 11 am on weekends. Tickets cost 8 euros.",
            "question": "When does the museum open on Saturday?",
        },
        "target": " 11 am",
        "notes": "Copying from context. The 270M model answers '9 am' (the weekday clause) instead of "
        "'11 am'; explain the reference target ' 11 am' and compare which clause each answer leans on.",
    },
    {
        "source": "mislabelled-sentiment",
        "template": (
            "Classify the sentiment of each review as Positive or Negative.\n\n"
            "Review: The food was cold and the waiter was rude.\nSentiment: Negative\n\n"
            "Review: Lovely staff and the best pasta I've had.\nSentiment: Positive\n\n"
            "Review: {mislabelled_review}\nSentiment: Positive\n\n"
            "Review: {review}\nSentiment:"
        ),
        "variables": {
            "mislabelled_review": "Terrible service, we waited an hour and left hungry.",
            "review": "The soup was bland and overpriced.",
        },
        "notes": "One few-shot example is mislabelled (a clearly negative review marked Positive); "
        "check how much the wrong example drives the label.",
    },
]

if __name__ == "__main__":
    path = Path(__file__).resolve().parent.parent / "data" / "sample_prompts.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for record in RECORDS:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(RECORDS)} records to {path}")
