"""Risk endpoints of the demo account: positions, detailed position, account report (§3.7 shapes).

Marks use each instrument's last trade. Choices where the reference gives no values: every position
was opened today (initial sizes 0, daily diff = total diff); `contractType` names are the
simulator's (`STOCK`, `BOND`, `OPTION_CALL`, `OPTION_PUT`, `FUTURE`, `REPO`; the DOC shows
`FUTURE_OPTION_CALL` for options on futures); USD is converted to ARS at a fixed 1455 for totals;
`settlType` is 0 for CI and 1 for 24hs (PNET's `SettlementType`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from brokerbridge.sim.primary.account import Position
from brokerbridge.sim.primary.catalog import PrimaryInstrument
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.venues.primary.wire_format import ms, num

USD_ARS = Decimal("1455")
CENT = Decimal("0.01")


def _mark(exchange: PrimaryExchange, inst: PrimaryInstrument) -> Decimal:
    trades = exchange.market.trades(inst.symbol)
    return trades[-1].price if trades else inst.start_price


def _diff(inst: PrimaryInstrument, position: Position, mark: Decimal) -> Decimal:
    """Mark-to-market result of the day's buys and sells, in the instrument's currency."""
    gain = (mark - position.buy_price) * position.buy_size + (position.sell_price - mark) * position.sell_size
    return inst.notional(Decimal(1), gain).quantize(CENT)


def _contract_type(inst: PrimaryInstrument) -> str:
    if inst.kind == "option":
        return "OPTION_CALL" if inst.cficode.startswith("OC") else "OPTION_PUT"
    return {"stock": "STOCK", "bond": "BOND", "future": "FUTURE", "repo": "REPO"}[inst.kind]


def _settl_type(inst: PrimaryInstrument) -> int:
    return 1 if inst.settlement == "24hs" else 0


def _held(exchange: PrimaryExchange) -> list[tuple[PrimaryInstrument, Position]]:
    out = []
    for symbol, position in exchange.account.positions.items():
        inst = exchange.catalog.get(symbol)
        if inst is not None:
            out.append((inst, position))
    return out


def positions(exchange: PrimaryExchange) -> list[dict[str, Any]]:
    rows = []
    for inst, position in _held(exchange):
        diff = num(_diff(inst, position, _mark(exchange, inst)))
        rows.append(
            {
                "instrument": {"symbolReference": inst.ticker, "settlType": _settl_type(inst)},
                "symbol": inst.symbol,
                "buySize": num(position.buy_size),
                "buyPrice": num(position.buy_price.quantize(Decimal("0.001"))),
                "sellSize": num(position.sell_size),
                "sellPrice": num(position.sell_price.quantize(Decimal("0.001"))),
                "totalDailyDiff": diff,
                "totalDiff": diff,
                "tradingSymbol": inst.symbol,
                "originalBuyPrice": 0,
                "originalSellPrice": 0,
            }
        )
    return rows


def detailed_position(exchange: PrimaryExchange) -> dict[str, Any]:
    report: dict[str, dict[str, Any]] = {}
    total_diff = Decimal(0)
    market_value = Decimal(0)
    for inst, position in _held(exchange):
        mark = _mark(exchange, inst)
        diff = _diff(inst, position, mark)
        rate = USD_ARS if inst.currency == "USD" else Decimal(1)
        total_diff += diff * rate
        market_value += inst.notional(mark, position.net) * rate
        net = num(position.net)
        row = {
            "symbolReference": inst.ticker,
            "contractType": _contract_type(inst),
            "priceConversionFactor": inst.price_conversion_factor,
            "contractSize": inst.contract_multiplier,
            "marketPrice": num(mark),
            "currency": inst.currency,
            "exchangeRate": num(rate),
            "contractMultiplier": inst.contract_multiplier,
            "totalInitialSize": 0,
            "buyInitialSize": 0,
            "sellInitialSize": 0,
            "buyInitialPrice": 0,
            "sellInitialPrice": 0,
            "totalFilledSize": net,
            "buyFilledSize": num(position.buy_size),
            "sellFilledSize": num(position.sell_size),
            "buyFilledPrice": num(position.buy_price.quantize(Decimal("0.001"))),
            "sellFilledPrice": num(position.sell_price.quantize(Decimal("0.001"))),
            "totalCurrentSize": net,
            "buyCurrentSize": num(position.buy_size),
            "sellCurrentSize": num(position.sell_size),
            "detailedDailyDiff": {
                "totalDailyDiff": num(diff),
                "buyDailyDiff": num(
                    inst.notional(mark - position.buy_price, position.buy_size).quantize(CENT)
                ),
                "sellDailyDiff": num(
                    inst.notional(position.sell_price - mark, position.sell_size).quantize(CENT)
                ),
                "totalDailyDiffPlain": num(diff * rate),
            },
        }
        report.setdefault(_contract_type(inst), {})[inst.symbol] = {
            "detailedPositions": [row],
            "instrumentInitialSize": 0,
            "instrumentFilledSize": net,
            "instrumentCurrentSize": net,
        }
    return {
        "account": exchange.account.account_id,
        "totalDailyDiffPlain": num(total_diff.quantize(CENT)),
        "totalMarketValue": num(market_value.quantize(CENT)),
        "report": report,
        "lastCalculation": ms(exchange.clock.time()),
    }


def account_report(exchange: PrimaryExchange) -> dict[str, Any]:
    account = exchange.account
    detail = detailed_position(exchange)
    balances = {}
    for currency, cash in account.cash.items():
        available = account.available_cash(currency)
        balances[currency] = {"consumed": num((cash - available).quantize(CENT)), "available": num(available)}
    cash_ars = sum(
        (cash * (USD_ARS if ccy == "USD" else Decimal(1)) for ccy, cash in account.cash.items()), Decimal(0)
    )
    reserved = sum(
        (
            (account.cash[ccy] - account.available_cash(ccy)) * (USD_ARS if ccy == "USD" else Decimal(1))
            for ccy in account.cash
        ),
        Decimal(0),
    )
    now_ms = ms(exchange.clock.time())
    return {
        "accountName": account.account_id,
        "marketMember": "",
        "marketMemberIdentity": "",
        "collateral": 0,
        "margin": 0,
        "availableToCollateral": num((cash_ars - reserved).quantize(CENT)),
        "detailedAccountReports": {
            "0": {
                "currencyBalance": {"detailedCurrencyBalance": balances},
                "availableToOperate": {
                    "cash": {
                        "totalCash": num(cash_ars.quantize(CENT)),
                        "detailedCash": {ccy: num(cash) for ccy, cash in account.cash.items()},
                    },
                    "movements": 0,
                    "credit": None,
                    "total": num((cash_ars - reserved).quantize(CENT)),
                    "pendingMovements": 0,
                },
                "settlementDate": now_ms,
            }
        },
        "hasError": False,
        "errorDetail": None,
        "lastCalculation": now_ms,
        "portfolio": detail["totalMarketValue"],
        "ordersMargin": num(reserved.quantize(CENT)),
        "currentCash": num(cash_ars.quantize(CENT)),
        "dailyDiff": detail["totalDailyDiffPlain"],
        "uncoveredMargin": 0,
    }
