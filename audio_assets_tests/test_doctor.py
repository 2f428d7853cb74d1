"""`audio-assets doctor` against the Stash emulator."""

from audio_assets import doctor
from audio_assets.replica.stash_emulator import StashEmulator
from audio_assets.settings import load_settings


def _settings(tmp_path, stash, **extra):
    return load_settings({"AUDIO_ASSETS_DATA": str(tmp_path / "data"), "STASH_URL": stash.url, **extra})


def test_doctor_passes_on_a_good_setup(tmp_path):
    (tmp_path / "data" / "videos").mkdir(parents=True)
    with StashEmulator(tmp_path / "data" / "videos", api_key="k1") as stash:
        checks = doctor.run_checks(_settings(tmp_path, stash), env={"STASH_API_KEY": "k1"})
    text = doctor.render(checks)
    assert all(c.ok for c in checks if c.name != "data root"), text
    assert "Stash v" in text or "Stash 0" in text or "Stash" in text


def test_doctor_explains_a_wrong_key_and_a_library_mismatch(tmp_path):
    (tmp_path / "data" / "videos").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    with StashEmulator(tmp_path / "elsewhere", api_key="right") as stash:
        wrong = doctor.check_stash(_settings(tmp_path, stash), "wrong")
        assert not wrong[0].ok and "does not match" in wrong[0].advice
        missing = doctor.check_stash(_settings(tmp_path, stash), None)
        assert not missing[0].ok and "set STASH_API_KEY" in missing[0].advice
        paths = doctor.check_stash(_settings(tmp_path, stash), "right")
        assert paths[0].ok and not paths[1].ok and "STASH_LIBRARY_PATH" in paths[1].advice
        mapped = doctor.check_stash(_settings(tmp_path, stash, STASH_LIBRARY_PATH=str(tmp_path / "elsewhere")), "right")
        assert mapped[1].ok


def test_doctor_says_where_stash_is_not(tmp_path):
    settings = load_settings({"AUDIO_ASSETS_DATA": str(tmp_path), "STASH_URL": "http://127.0.0.1:9/graphql"})
    [c] = doctor.check_stash(settings, None)
    assert not c.ok and "STASH_URL" in c.advice
