"""Outbound webhooks: which messages an event produces (:mod:`.messages`), the webhooks a
site declares (:mod:`.targets`), their bodies (:mod:`.bodies`), signatures
(:mod:`.signing`) and delivery from the store's outbox (:mod:`.delivery`)."""
