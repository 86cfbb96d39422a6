from ingest.latency import Histogram


def test_cumulative_buckets_and_sum() -> None:
    h = Histogram(bounds=(0.1, 1.0), counts=[0, 0, 0])
    for seconds in (0.05, 0.1, 0.5, 3.0):
        h.observe(seconds)
    assert h.cumulative() == [("0.1", 2), ("1", 3), ("+Inf", 4)]
    assert h.count == 4 and abs(h.total - 3.65) < 1e-9
