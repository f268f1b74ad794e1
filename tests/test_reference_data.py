"""The reference-energy CSV layout: round trip and one-line errors on malformed input."""

import pandas as pd
import pytest

from validation.reference_data import (REQUIRED_COLUMNS, ReferenceDataError, layers_of, read_reference_csv,
                                       write_reference_csv)


def _rows():
    return pd.DataFrame([
        dict(platform="p", b=1, c=3, d=4, h=8, w=8, kh=3, kw=3, sh=1, sw=1, ph=1, pw=1, groups=1, M=100, energy_pJ=5.0,
             tool="t", custom=1),
        dict(platform="p", b=2, c=4, d=4, h=5, w=5, kh=1, kw=1, sh=1, sw=1, ph=0, pw=0, groups=4, M=50, energy_pJ=2.5,
             tool="t", custom=2),
    ])


def test_round_trip_keeps_rows_and_orders_columns(tmp_path):
    p = write_reference_csv(_rows().loc[:, ["custom"] + list(_rows().columns[:-1])], tmp_path / "r.csv")
    df = read_reference_csv(p)
    assert list(df.columns[:len(REQUIRED_COLUMNS)]) == list(REQUIRED_COLUMNS)
    assert df["energy_pJ"].tolist() == [5.0, 2.5] and df["custom"].tolist() == [1, 2]
    assert [L.F for L in layers_of(df)] == [1 * 4 * 8 * 8 * 3 * 9, 2 * 4 * 25 * 1]


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d.drop(columns=["energy_pJ", "M"]), "missing required column(s): M, energy_pJ"),
    (lambda d: d.assign(energy_pJ=[1.0, 0.0]), "row 2: 'energy_pJ' must be a positive"),
    (lambda d: d.assign(c=[3, 4.5]), "row 2: column 'c' must be an integer"),
    (lambda d: d.assign(M=[0, 5]), "row 1: column 'M' must be a positive"),
    (lambda d: d.assign(groups=[2, 4]), "row 1: invalid layer: c: 3 input channels are not divisible"),
    (lambda d: d.iloc[:0], "no rows"),
])
def test_malformed_data_gets_one_line_error(tmp_path, mutate, needle):
    p = tmp_path / "bad.csv"
    mutate(_rows()).to_csv(p, index=False)
    with pytest.raises(ReferenceDataError) as err:
        read_reference_csv(p)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(ReferenceDataError, match="no such file"):
        read_reference_csv(tmp_path / "nope.csv")
    (tmp_path / "g.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReferenceDataError):
        read_reference_csv(tmp_path / "g.csv")
