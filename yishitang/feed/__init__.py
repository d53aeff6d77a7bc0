"""A resident's home screen: the nearest studios, their public issues and their coming sessions."""
