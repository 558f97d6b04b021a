"""The torch training functions the multi-host tests send to the client session."""

# Two ranks of one DDP job, one per worker host (CPU, gloo): a tiny linear model, an epoch a
# step, a checkpoint per epoch. The rank's data comes from its own seed, so no data moves.
TORCH_FNS = """
import socket, torch

def train_ddp(ctx):
    torch.manual_seed(0)
    model = ctx.prepare(torch.nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ckpt = ctx.load_checkpoint(model=model, optimizer=opt)
    start = ckpt["step"] + 1 if ckpt else 0
    g = torch.Generator().manual_seed(ctx.rank)
    X = torch.randn(64, 3, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5])
    for epoch in range(start, ctx.epochs):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
        loss.backward()
        opt.step()
        ctx.report(epoch=epoch, loss=ctx.mean(loss.item()))
        ctx.save_checkpoint(model, opt, step=epoch)
    return socket.gethostname()

def train_marked(ctx):  # saves checkpoints through train_ddp
    open("/tmp/ddp-started", "w").close()
    return train_ddp(ctx)

def train_plain(ctx):  # no checkpoints
    return [socket.gethostname(), ctx.mean(float(ctx.rank))]

ddp = dict(workers=2, backend="gloo", track=False, progress=False, timeout=60)
"""
