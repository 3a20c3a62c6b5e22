import numpy2gpt.autograd as ag


def test_import_and_backward():
    x = ag.Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
