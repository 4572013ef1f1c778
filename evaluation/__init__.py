"""Metrics with reference parity (PSNR, SSIM, LPIPS, FID, NIQE, identity, landmark distance)."""
