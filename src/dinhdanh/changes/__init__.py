"""Change notifications for partners: follow lists, subscriptions, routing of the outbox to each
partner's feed, signed webhooks with retries and a dead-letter list, and a NATS JetStream publisher."""
