"""numpy2gpt.nn: modules, functional ops, init and optimizers on numpy2gpt.autograd, named like torch.nn."""
