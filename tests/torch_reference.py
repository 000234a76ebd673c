"""A PyTorch statement of the official ACmix semantics, used only by the tests.

It is checked against the official outputs in tests/data/golden, and then serves as
the reference for the cases those files do not cover. Where the official code
fails (odd sizes with stride 2, kernel_conv != 3, dilation) it computes what the
method defines: ceil-sized outputs, padding kernel_conv // 2, dilated windows.
"""
import torch
import torch.nn as tnn
import torch.nn.functional as F


def grid(h, w):
    xs = torch.linspace(-1.0, 1.0, w).unsqueeze(0).repeat(h, 1)
    ys = torch.linspace(-1.0, 1.0, h).unsqueeze(1).repeat(1, w)
    return torch.stack([xs, ys]).unsqueeze(0)


def local_attention(q, k, v, pe, k_att, s, dil):
    """The official sliding-window attention (q already scaled), windows by unfold."""
    bn, d = q.shape[:2]
    pad = dil * (k_att - 1) // 2
    qa, qpe = q[:, :, ::s, ::s], pe[:, :, ::s, ::s]
    ho, wo = qa.shape[2:]

    def win(t):
        cols = F.unfold(F.pad(t, [pad] * 4, mode="reflect"), k_att, dilation=dil, stride=s)
        return cols.reshape(t.shape[0], d, k_att ** 2, ho, wo)

    att = (qa.unsqueeze(2) * (win(k) + qpe.unsqueeze(2) - win(pe))).sum(1).softmax(1)
    return (att.unsqueeze(1) * win(v)).sum(2)


class ACmix(tnn.Module):
    def __init__(self, in_planes, out_planes, kernel_att=7, head=4, kernel_conv=3, stride=1,
                 dilation=1):
        super().__init__()
        self.head, self.head_dim = head, out_planes // head
        self.k_att, self.k_conv, self.stride, self.dil = kernel_att, kernel_conv, stride, dilation
        self.rate1 = tnn.Parameter(torch.full((1,), 0.5))
        self.rate2 = tnn.Parameter(torch.full((1,), 0.5))
        self.conv1 = tnn.Conv2d(in_planes, out_planes, 1)
        self.conv2 = tnn.Conv2d(in_planes, out_planes, 1)
        self.conv3 = tnn.Conv2d(in_planes, out_planes, 1)
        self.conv_p = tnn.Conv2d(2, self.head_dim, 1)
        self.fc = tnn.Conv2d(3 * head, kernel_conv ** 2, 1, bias=False)
        self.dep_conv = tnn.Conv2d(kernel_conv ** 2 * self.head_dim, out_planes, kernel_conv,
                                   stride=stride, padding=dilation * (kernel_conv // 2),
                                   dilation=dilation, groups=self.head_dim, bias=False)

    def forward(self, x):
        q, k, v = self.conv1(x), self.conv2(x), self.conv3(x)
        b, c, h, w = q.shape
        n, d = self.head, self.head_dim
        pe = self.conv_p(grid(h, w))
        out_att = local_attention(q.reshape(b * n, d, h, w) * d ** -0.5, k.reshape(b * n, d, h, w),
                                  v.reshape(b * n, d, h, w), pe, self.k_att, self.stride,
                                  self.dil)
        out_att = out_att.reshape(b, c, *out_att.shape[2:])
        f = self.fc(torch.cat([t.reshape(b, n, d, h * w) for t in (q, k, v)], 1))
        out_conv = self.dep_conv(f.permute(0, 2, 1, 3).reshape(b, -1, h, w))
        return self.rate1 * out_att + self.rate2 * out_conv


class Bottleneck(tnn.Module):
    def __init__(self, inplanes, planes, k_att=7, head=4, k_conv=3, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = ACmix(planes, planes, k_att, head, k_conv, stride)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ACmixResNet(tnn.Module):
    def __init__(self, layers, k_att=7, head=4, k_conv=3, num_classes=1000):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            down = tnn.Sequential(tnn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                  tnn.BatchNorm2d(planes * 4))
            cells = [Bottleneck(inplanes, planes, k_att, head, k_conv, stride, down)]
            inplanes = planes * 4
            cells += [Bottleneck(inplanes, planes, k_att, head, k_conv) for _ in range(1, blocks)]
            setattr(self, f"layer{i + 1}", tnn.Sequential(*cells))
        self.fc = tnn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))


def perturb_(module, seed=0):
    """Move every parameter and BatchNorm statistic away from its initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():  # relative, so the network keeps a sane scale
            p.mul_(1 + 0.2 * torch.randn(p.shape, generator=g))
            p.add_(0.02 * torch.randn(p.shape, generator=g))
        for m in module.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return module
