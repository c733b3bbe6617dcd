-- Nexmark q3: local item suggestion, auctions of category 10 by sellers in OR, ID or CA.
-- Difference: persons are a TABLE by id and the join a stream-table lookup (auctions are
-- repartitioned by seller): an auction whose seller registers after it (Nexmark's ids run
-- up to 10 ahead) finds no person, where the reference's regular join would match later.
-- The result carries the join key (SELLER) too, as the dialect requires.
CREATE STREAM nexmark_q3 AS
  SELECT a.seller AS seller, p.name AS name, p.city AS city, p.state AS state, a.id AS id
  FROM auction a JOIN person_table p ON a.seller = p.id
  WHERE a.category = 10 AND (p.state = 'OR' OR p.state = 'ID' OR p.state = 'CA')
  EMIT CHANGES;
