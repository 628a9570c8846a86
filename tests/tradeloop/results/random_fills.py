"""Random fills for the property tests of the columnar result builders."""

from __future__ import annotations

from hypothesis import strategies as st

from tradeloop.clock import utc_datetime
from tradeloop.events import Fill, Side

NS_DAY = 86_400 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01 UTC


def make_fill(i: int, asset: str, qty: float, price: float, commission: float) -> Fill:
    ts = T0 + i * NS_DAY
    side = Side.BUY if qty > 0 else Side.SELL
    return Fill(i + 1, asset, side, abs(qty), price, commission, 0.0, utc_datetime(ts), ts, i, "s")


fill_lists = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.one_of(
            st.integers(-20, 20).filter(bool).map(float),
            st.floats(-5, 5).filter(lambda q: abs(q) > 1e-3),
        ),
        st.floats(1, 200),
        st.floats(0, 3),
    ),
    max_size=40,
)
