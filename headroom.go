package pubsub

import "github.com/pubsubkit/pubsub/transport"

// checkDeadLetterRoom warns, when s is added, if a message of s's topic could be too
// large for s's dead-letter topic once the dead-letter keys are added: the largest
// message the client may have to dead-letter is the largest the transport publishes
// to the topic (a record from another producer that is larger still goes to the
// dead-letter topic without its payload in any case), and its dead letter needs
// transport.DeadLetterHeadroom more. Topics whose messages cannot come near that are
// not warned about, whatever their size.
func (c *Client) checkDeadLetterRoom(s *subscription) {
	limits, ok := c.tr.(transport.MessageLimiter)
	if !ok {
		return
	}
	_, largest := limits.MessageLimit(s.topic)
	room, _ := limits.MessageLimit(s.deadLetterTopic)
	if room <= 0 || largest <= 0 || room >= largest+transport.DeadLetterHeadroom {
		return
	}
	fits := max(room-transport.DeadLetterHeadroom, 0)
	c.opts.logger.Warn("pubsub: some messages of this topic could not be dead-lettered whole: the dead-letter topic takes smaller messages than the topic does, plus the room the dead-letter keys need. "+
		"A message over fits_bytes that fails would be dead-lettered without its payload (the payload stays in the topic, at the partition and offset the letter names). "+
		"To keep every payload, raise the dead-letter topic's max.message.bytes to want_bytes",
		"topic", s.topic, "group", s.group, "dead_letter_topic", s.deadLetterTopic,
		"fits_bytes", fits, "largest_message_bytes", largest, "dead_letter_topic_max_message_bytes", room,
		"want_bytes", largest+transport.DeadLetterHeadroom)
}
