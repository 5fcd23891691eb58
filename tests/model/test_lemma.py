"""Edit scripts: every EWT-style pair round-trips, casing and irregular forms included."""

from hypothesis import given
from hypothesis import strategies as st

from app.model.lemma import IDENTITY, apply_script, edit_script


def test_scripts_of_common_pairs():
    assert edit_script("running", "run") == "k|4|"
    assert edit_script("The", "the") == "l|0|"
    assert edit_script("was", "be") == "k|3|be"
    assert edit_script("Paris", "Paris") == IDENTITY
    assert edit_script("n't", "not") == "k|2|ot"


def test_a_script_generalises_across_forms():
    script = edit_script("walked", "walk")
    assert apply_script("jumped", script) == "jump"
    assert apply_script("Houses", edit_script("houses", "house")) == "House"


def test_a_cut_longer_than_the_form_takes_all_of_it():
    assert apply_script("is", "k|3|be") == "be"


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_every_pair_round_trips(form, lemma):
    assert apply_script(form, edit_script(form, lemma)) == lemma
