from grm.pipeline.report import Curve, equal_lambda_table, markdown


def _curve(name, kind, pts):
    return Curve(name, name.upper(), kind, [{"rate_point": rp, "bpp": b, "psnr": q, "ms_ssim": m}
                                            for rp, b, q, m in pts])


def test_equal_lambda_deltas_are_subject_minus_other():
    grm = _curve("grm", "grm", [("q1", 0.22, 30.0, 0.95), ("q2", 0.5, 33.0, 0.97)])
    gdn = _curve("gdn", "ablation", [("q1", 0.20, 29.5, 0.94), ("q2", 0.5, 33.5, 0.98), ("q3", 1.0, 36, 0.99)])
    rows = equal_lambda_table(grm, [gdn])
    assert rows[2] == "| GDN | q1 | +10.0% | +0.50 | +0.0100 | – |"
    assert rows[3] == "| GDN | q2 | +0.0% | -0.50 | -0.0100 | – |"
    assert len(rows) == 4, "a rate point the subject lacks is skipped"


def test_report_has_equal_lambda_section_even_when_bd_rate_is_undefined():
    grm = _curve("grm", "grm", [("q1", 0.2, 30.0, 0.95), ("q2", 0.4, 29.0, 0.96)])   # not monotonic
    peer = _curve("mbt", "peer", [("q1", 0.25, 29.0, 0.94), ("q2", 0.45, 30.0, 0.96)])
    text, _ = markdown([grm, peer], anchor="none", subject="grm", images=1)
    assert "fewer than 2 points on an operational RD curve" in text
    assert "- GRM (PSNR): q2" in text                    # the dropped point is named
    assert "## GRM at equal λ" in text and "| MBT | q1 | -20.0% | +1.00 | +0.0100 | – |" in text


def test_differences_inside_the_seed_spread_are_marked_noise():
    grm = _curve("grm", "grm", [("q1", 0.20, 30.0, 0.95), ("q2", 0.50, 33.0, 0.97)])
    seed1 = _curve("grm-seed1", "seed", [("q1", 0.21, 29.8, 0.95), ("q2", 0.52, 33.3, 0.97)])
    noref = _curve("noref", "ablation", [("q1", 0.205, 29.9, 0.95), ("q2", 0.60, 32.0, 0.96)])
    text, metrics = markdown([grm, seed1, noref], anchor="none", subject="grm", images=1)
    assert "| NOREF | q1 | -2.4% | +0.10 | +0.0000 | within noise |" in text
    assert "| NOREF | q2 | -16.7% | +1.00 | +0.0100 | beyond noise |" in text
    assert "- vs NOREF: GRM spends fewer bits (-9.6%) at +0.55 dB PSNR, mean over 2 rate point(s); " \
           "beyond seed noise at 1 of 2 rate point(s)." in text
    assert abs(metrics["seed_spread.q1.bpp_pct"] - 100 * (1 - 0.20 / 0.21)) < 1e-9
    text, _ = markdown([grm, noref], anchor="none", subject="grm", images=1)
    assert "Seed noise not measured" in text and "seed noise not measured." in text
