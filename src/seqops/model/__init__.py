"""The network (plain nn.Module) and the Lightning system that trains it."""
