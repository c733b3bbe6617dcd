-- Nexmark q4: average price of the winning bids per category.
-- Difference: bids join their auction's row (auctions as a TABLE by id, so a bid for an
-- auction that is not there yet finds none); a bid counts when it came before the auction
-- expired; the winning price is an updating MAX per auction (no close-of-auction result),
-- averaged per category by a table aggregation that follows each auction's maximum.
CREATE STREAM nexmark_q4_bids AS
  SELECT b.auction AS auction, a.category AS category, b.price AS price
  FROM bid b JOIN auction_table a ON b.auction = a.id
  WHERE b.date_time >= a.date_time AND b.date_time <= a.expires
  EMIT CHANGES;

CREATE TABLE nexmark_q4_winning AS
  SELECT auction, LATEST_BY_OFFSET(category) AS category, MAX(price) AS final_price
  FROM nexmark_q4_bids GROUP BY auction EMIT CHANGES;

CREATE TABLE nexmark_q4 AS
  SELECT category, AVG(final_price) AS avg_final FROM nexmark_q4_winning GROUP BY category EMIT CHANGES;
