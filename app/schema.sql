-- lockstep explorer: the ledger schema (MariaDB 10.3.3+; the queries use SET STATEMENT and
-- PERCENTILE_CONT). `npm run seed` drops and recreates these four tables, then loads them.
-- Money is DECIMAL(14,2); timestamps are DATETIME in UTC.

CREATE TABLE IF NOT EXISTS accounts (
  id              INT UNSIGNED  NOT NULL PRIMARY KEY,
  name            VARCHAR(64)   NOT NULL,
  opening_balance DECIMAL(14,2) NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS items (
  id   SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  name VARCHAR(64)       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS shops (
  id       INT UNSIGNED NOT NULL PRIMARY KEY,
  owner_id INT UNSIGNED NOT NULL,
  name     VARCHAR(96)  NOT NULL,
  KEY shops_owner (owner_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One row per money movement. No payer (from_account NULL) = money created (salary);
-- no payee (to_account NULL) = money destroyed (tax). Chestshop and market rows carry the item,
-- the quantity and the unit price (amount = quantity * unit_price).
-- The 30-day pages read by time (ledger_ts, ledger_kind_ts). The drill-down pages read one
-- entity's rows: one item's market trades (ledger_item_kind_ts), one shop's trades
-- (ledger_shop_ts), what one account paid (ledger_from_ts) and received (ledger_to_ts).
CREATE TABLE IF NOT EXISTS ledger (
  id           BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  ts           DATETIME        NOT NULL,
  kind         ENUM('transfer', 'chestshop_buy', 'chestshop_sell', 'market_trade', 'tax', 'salary') NOT NULL,
  from_account INT UNSIGNED    NULL,
  to_account   INT UNSIGNED    NULL,
  amount       DECIMAL(14,2)   NOT NULL,
  shop_id      INT UNSIGNED    NULL,
  item_id      SMALLINT UNSIGNED NULL,
  quantity     INT UNSIGNED    NULL,
  unit_price   DECIMAL(12,2)   NULL,
  KEY ledger_ts (ts),
  KEY ledger_kind_ts (kind, ts),
  KEY ledger_item_kind_ts (item_id, kind, ts),
  KEY ledger_shop_ts (shop_id, ts),
  KEY ledger_from_ts (from_account, ts),
  KEY ledger_to_ts (to_account, ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
