"""Two days of the pipeline with 20% of the outside world's answers failing (make soak runs all 17)."""

from audio_assets.soak import soak


def test_pipeline_survives_20_percent_faults(tmp_path):
    report = soak(tmp_path / "data", "2025-07-31", "2025-08-01", rate=0.2)
    assert report["faults_total"] >= 10, report["faults_injected"]
    assert report["faults_injected"].get("delay", 0) >= 1, report["faults_injected"]  # timeouts, survived
    assert report["release_mismatches"] == [] and report["checks_failed"] == []
    assert report["second_run_stash_mutations"] == 0
    assert report["rate_limit_respected"], report["peak_requests_per_second_by_host"]
