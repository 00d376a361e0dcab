/* Gradient descent in C on a model exported by adjit: fit the initial state and the parameters
 * of 20 coupled pendulums (pendulum_scan: 100 RK4 steps, one scan) so that the state after
 * one second reaches a target.
 *
 *   adjit export ir/models/pendulum_scan.ir --grad -o build/pendulum
 *   cc -O2 -Ibuild examples/c/descent.c build/pendulum.o -lm -o descent && ./descent
 *
 * pendulum_grad(arg, res, work): arg = {z[43], target[40]}, res = {loss, grad_z[43]}. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "pendulum.h"

int main(void) {
    double z[43], target[40], trial[43], loss, grad[43], trial_loss, trial_grad[43];
    for (int i = 0; i < 20; i++) {
        z[i] = 0.5 * sin(i);      /* initial angles */
        z[20 + i] = 0.0;          /* initial angular velocities */
        target[i] = 0.2 * cos(i); /* angles after one second */
        target[20 + i] = 0.0;     /* velocities after one second */
    }
    z[40] = 9.81; /* g / L */
    z[41] = 0.1;  /* damping */
    z[42] = 0.5;  /* coupling */

    /* One workspace, sized by the query, reused by every call. */
    double *work = malloc(pendulum_grad_work() * sizeof *work + 1);
    const double *arg[2] = {z, target};
    double *res[2] = {&loss, grad};
    const double *trial_arg[2] = {trial, target};
    double *trial_res[2] = {&trial_loss, trial_grad};
    if (work == NULL || pendulum_grad(arg, res, work) != 0) return 1;

    double step = 1e-2;
    for (int it = 0; it <= 40; it++) {
        if (it % 4 == 0) printf("loss %3d %.12g\n", it, loss);
        /* Backtracking: halve the step until the loss goes down. */
        for (int tries = 0; tries < 60; tries++) {
            for (int k = 0; k < 43; k++) trial[k] = z[k] - step * grad[k];
            if (pendulum_grad(trial_arg, trial_res, work) != 0) return 1;
            if (trial_loss < loss) break;
            step *= 0.5;
        }
        if (!(trial_loss < loss)) break; /* converged as far as doubles tell */
        for (int k = 0; k < 43; k++) {
            z[k] = trial[k];
            grad[k] = trial_grad[k];
        }
        loss = trial_loss;
        step *= 1.5;
    }
    printf("final loss %.12g with g/L = %.6f, damping = %.6f, coupling = %.6f\n", loss, z[40],
           z[41], z[42]);
    free(work);
    return 0;
}
